# Usage (after the g1 analyze command of README.md): python results/pong-fine/probe_vision_memory.py results/pong-fine/g1-final/model runs/g1-analysis 0
"""Open-loop replay of an analysis rollout with the vision core's ConvLSTM state reset to its
initial value before every step (the policy LSTM keeps its state): does the ball head's lag go?"""
import sys, numpy as np
from pipelines.analysis.stepper import load_stepper
from pipelines.analysis.object_scores import ObjectTrack, object_scores_by_lag, spatial_softmax
model, d, head = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = np.load(f'{d}/rollout.npz'); o = np.load(f'{d}/objects.npz')
s = load_stepper(model)
T = len(r['frames']); firsts = r['firsts']
tr = ObjectTrack('Ball', o['Ball_masks'], o['Ball_present'], o['Ball_centres'], o['Ball_heights'])
out = {}
for mode in ('carried', 'vision state reset every step'):
    st = s.initial_state(1); zero = s.initial_state(1)
    att, what = [], []
    for t in range(T):
        first = bool(firsts[t]) or t == 0
        if mode != 'carried':
            st = {**st, 'convlstm_h': zero['convlstm_h'], 'convlstm_c': zero['convlstm_c']}
        pa = 0 if first else int(r['actions'][t-1]); pr = 0.0 if first else float(r['rewards'][t-1])
        o_, st = s.step(r['frames'][t][None], np.array([pa], np.int32), np.array([pr], np.float32), st, np.array([first]))
        att.append(o_['attention'][0]); what.append(o_['what'][0])
    A = np.stack(att).astype(np.float64); W = spatial_softmax(np.stack(what))
    for name, M in (('attention', A), ('what', W)):
        b = object_scores_by_lag(M, tr, range(-8, 9), firsts)
        L = b['lags']
        print(f"{mode:32s} {name:9s} head {head}: best lag {b['best_lag'][head]:+d} lift {b['best_lift'][head]:.2f} hit {b['best_hit_rate'][head]:.2f}; "
              "lift by lag " + " ".join(f"{k:+d}:{v:.1f}" for k, v in zip(L, b['lift'][head]) if -6 <= k <= 3))
    if mode == 'carried':
        print('  max |attention - recorded| =', float(np.abs(A - r['attention']).max()))
