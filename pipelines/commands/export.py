"""``s3ta export``: write a SavedModel with the one-step and initial-state signatures."""
from __future__ import annotations

import os

from pipelines.commands.flags import add_model_args, build_model_from_args, check_output_dir


def register(sub):
    p = sub.add_parser("export", help="export a model as a SavedModel for serving",
                       description="Write a SavedModel with signatures 'serving_default' (one agent step: "
                                   "observation, prev_action, prev_reward, state_* tensors and an optional "
                                   "bool first [B] that resets rows at an episode start -> logits, value, "
                                   "action, attention, what, where, queries, answers and the new state_*; "
                                   "TF Serving may leave first out, Python's signatures[...] needs it) and "
                                   "'initial_state(batch_size)'. With --checkpoint the weights (and, if "
                                   "present, the model config) come from a training run's checkpoint "
                                   "directory; otherwise the model is freshly initialised. "
                                   "Example: s3ta export --preset paper --agent attention --num-actions 6 "
                                   "--out /tmp/pong_model")
    add_model_args(p, num_actions_required=False)
    p.add_argument("--checkpoint", default=None, metavar="DIR",
                   help="checkpoint directory to take weights from (a run's ROOT/checkpoints: the model is rebuilt "
                        "from the run's run.json, so no model flag is needed)")
    p.add_argument("--out", required=True, metavar="DIR", help="output SavedModel directory")
    p.set_defaults(func=run)


def run(args) -> int:
    from s3ta_tf.checkpoints import has_model_record, load_agent_net, restore_model
    from s3ta_tf.export import check_export_target, export_saved_model
    from s3ta_tf.run_record import read_record, record_path
    check_export_target(args.out)      # before the model is built: what --out holds, and its path
    check_output_dir("--out", args.out)
    if args.checkpoint and not os.path.isdir(args.checkpoint):
        raise FileNotFoundError(f"--checkpoint {args.checkpoint}: no such directory")
    if args.checkpoint and record_path(args.checkpoint, search_parent=True) is not None:
        read_record(args.checkpoint, search_parent=True)   # an unreadable run.json is named, not taken for none
    if args.checkpoint and has_model_record(args.checkpoint):
        model = load_agent_net(args.checkpoint)
    else:
        if args.num_actions is None:
            raise ValueError("--num-actions is required unless --checkpoint belongs to a run (run.json)")
        model = build_model_from_args(args, args.num_actions)
        if args.checkpoint:
            restore_model(model, args.checkpoint)
    path = export_saved_model(model, args.out)
    print(f"exported {model.variant} agent ({model.num_actions} actions) to {path}")
    return 0
