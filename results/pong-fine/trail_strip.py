# Usage (after the g1 analyze command of README.md): python results/pong-fine/trail_strip.py runs/g1-analysis 0 202 6 results/pong-fine/g1-head0-trail.png
"""A strip of consecutive steps: g1's head 0 overlaid on the frame, with the ball's position now
(green box) and 4 steps before (red box), both from RAM."""
import sys, numpy as np
from pipelines.analysis.overlay import overlay_heads
from pipelines.analysis.video import write_png
d, head, t0, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
r = np.load(f'{d}/rollout.npz'); o = np.load(f'{d}/objects.npz')
F, A = r['frames'], r['attention']; c = o['Ball_centres']; p = o['Ball_present']
scale = 4
tiles = []
def box(img, cell, colour):
    if not np.all(np.isfinite(cell)): return
    h, w = A.shape[-2:]; H, W = img.shape[:2]
    cy, cx = (cell[0] + 0.5) * H / h, (cell[1] + 0.5) * W / w
    y0, y1 = int(max(cy - 6, 0)), int(min(cy + 6, H - 1)); x0, x1 = int(max(cx - 6, 0)), int(min(cx + 6, W - 1))
    img[y0:y1+1, [x0, x1]] = colour; img[[y0, y1], x0:x1+1] = colour
for t in range(t0, t0 + n):
    big = np.kron(F[t], np.ones((scale, scale, 1), np.uint8))
    ov = overlay_heads(big, A[t], 0.6)[head].copy()
    if t - 4 >= 0 and p[t - 4]: box(ov, c[t - 4], (255, 40, 40))
    if p[t]: box(ov, c[t], (40, 255, 40))
    pad = np.full((ov.shape[0], 4, 3), 255, np.uint8)
    tiles += [ov, pad]
write_png(out, np.concatenate(tiles[:-1], 1))
print(out)
