"""The V-trace (IMPALA) actor-critic agent, one folder per concern of the agent:

- ``config``:   TrainConfig and its presets (SPEC §2), the demo run
- ``builder``:  RunSpec — what a run is; makes the environment, network and replay tables
- ``replay``:   the Reverb side: tables, the stored item (Experience), the actors' writer and
                the learner's readers
- ``variables``: the learner → actors variable channel
- ``networks``: the TF-Agents network around the Keras AgentNet
- ``policies``: the actors' policy (behaviour logits and recurrent state in its info)
- ``vtrace``, ``losses``: V-trace returns and the loss terms, small pure functions
- ``learning``: VTraceAgent, the TF-Agents agent whose train step is the learner's update

The processes that run these (replay server, learner, actors, local launcher) are in
:mod:`pipelines.rl`. Importing this package is light; TensorFlow loads with the modules that
need it.
"""
