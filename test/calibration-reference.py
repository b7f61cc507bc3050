"""Independent reference for test/calibration.test.ts (run with /usr/bin/python3).

Each convention follows the named library's own rule, written out here with torch/numpy:
  guo           Guo et al.'s _ECELoss: torch.linspace(0, 1, B + 1) edges (float32),
                in_bin = conf.gt(lo.item()) * conf.le(hi.item()), prop_in_bin over all N
  torchmetrics  _binning_bucketize: torch.bucketize(conf, edges, right=True) - 1 into B + 1 bins
  netcal        np.clip(conf, eps, 1 - eps) then np.histogram(edges=np.linspace(0, 1, B + 1))
  equal mass    uncertainty-calibration get_equal_bins (np.array_split, midpoints, 1.0, set)
                + np.searchsorted(side='left') + plugin_ce(power=1)   (guo / torchmetrics)
                netcal: np.quantile(conf, np.linspace(0, 1, B + 1)), edges[0] = 0, edges[-1] = 1,
                np.histogram
Temperature: the minimiser of F.cross_entropy(logits / T, y), by LBFGS with strong Wolfe line
search on log T (float64, tight tolerances), and the gpleiss/temperature_scaling setting
(start 1.5, LBFGS lr=0.01, max_iter=50) for comparison.

stdin: {"cases": [...]}; stdout: {"results": [...]} (see the test for the fields).
"""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F


def top_label(p):
    conf = p.max(axis=1)
    pred = p.argmax(axis=1)  # numpy: first index among ties
    return conf, pred


def guo_bins(conf_t, B):
    edges = torch.linspace(0, 1, B + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        out.append((conf_t.gt(lo.item()) * conf_t.le(hi.item())).numpy())
    return out  # list of boolean masks


def torchmetrics_bins(conf_t, B):
    edges = torch.linspace(0, 1, B + 1, dtype=torch.float).to(conf_t.dtype)
    idx = (torch.bucketize(conf_t, edges, right=True) - 1).numpy()
    return [idx == b for b in range(B + 1)]


def netcal_bins(conf_np, B):
    eps = np.finfo(np.float64).eps
    x = np.clip(conf_np.astype(np.float64), eps, 1 - eps)
    edges = np.linspace(0.0, 1.0, B + 1)
    # np.histogram's rule, expressed per sample: [lo, hi), last bin closed.
    idx = np.searchsorted(edges, x, side='right') - 1
    idx[x == edges[-1]] = B - 1
    counts, _ = np.histogram(x, bins=edges)
    masks = [idx == b for b in range(B)]
    assert all(m.sum() == c for m, c in zip(masks, counts))
    return masks


def masks_for(values_np, dtype, B, convention):
    t = torch.from_numpy(values_np.astype(dtype))
    if convention == 'guo':
        return guo_bins(t, B)
    if convention == 'torchmetrics':
        return torchmetrics_bins(t, B)
    return netcal_bins(values_np.astype(dtype), B)


def errors(masks, conf, hit, n):
    l1 = l2 = deb = 0.0
    mx = 0.0
    counts = []
    for m in masks:
        c = int(m.sum())
        counts.append(c)
        if c == 0:
            continue
        acc = hit[m].astype(np.float64).mean()
        cf = conf[m].astype(np.float64).mean()
        gap = acc - cf
        l1 += c / n * abs(gap)
        l2 += c / n * gap * gap
        if c >= 2:
            deb += c / n * (gap * gap - acc * (1 - acc) / (c - 1))
        mx = max(mx, abs(gap))
    return dict(l1=l1, l2=np.sqrt(l2) if l2 > 0 else 0.0, l2deb=np.sqrt(max(deb, 0.0)), max=mx, counts=counts)


def equal_mass_uc(conf, hit, B):
    # uncertainty-calibration: get_equal_bins + fast_bin + plugin_ce(power=1)
    probs = sorted(conf.astype(np.float64))
    nb = min(B, len(probs))
    parts = np.array_split(probs, nb)
    bins = []
    for i in range(len(parts) - 1):
        bins.append((parts[i][-1] + parts[i + 1][0]) / 2.0)
    bins.append(1.0)
    bins = sorted(list(set(bins)))
    idx = np.searchsorted(bins, conf.astype(np.float64))
    masks = [idx == b for b in range(len(bins))]
    return errors(masks, conf, hit, len(conf))


def equal_mass_netcal(conf, hit, B):
    x = conf.astype(np.float64)
    edges = np.quantile(x, np.linspace(0.0, 1.0, B + 1))
    edges[0] = 0.0
    edges[-1] = 1.0
    idx = np.searchsorted(edges, x, side='right') - 1
    idx[x == 1.0] = B - 1
    idx = np.clip(idx, 0, B - 1)
    masks = [idx == b for b in range(B)]
    return errors(masks, conf, hit, len(conf))


def fit_temperature(logits, labels):
    z = torch.tensor(logits, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.int64)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1, max_iter=500, tolerance_grad=1e-15, tolerance_change=1e-20,
                            history_size=20, line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    t_opt = float(log_t.exp())
    # The gpleiss reference setting, for comparison only.
    t = torch.ones(1, dtype=torch.float64) * 1.5
    t.requires_grad_(True)
    opt2 = torch.optim.LBFGS([t], lr=0.01, max_iter=50)

    def closure2():
        opt2.zero_grad()
        loss = F.cross_entropy(z / t, y)
        loss.backward()
        return loss

    opt2.step(closure2)
    with torch.no_grad():
        nll_before = float(F.cross_entropy(z, y))
        nll_after = float(F.cross_entropy(z / t_opt, y))
    return dict(temperature=t_opt, gpleiss=float(t), nllBefore=nll_before, nllAfter=nll_after)


def run(case):
    dtype = np.float32 if case['dtype'] == 'float32' else np.float64
    tdtype = torch.float32 if case['dtype'] == 'float32' else torch.float64
    y = np.array(case['labels'], dtype=np.int64)
    n = len(y)
    out = {}
    if 'logits' in case:
        z = torch.tensor(np.array(case['logits'], dtype=dtype))
        T = case.get('temperature', 1.0)
        zt = z / T if T != 1.0 else z
        p = F.softmax(zt, dim=1).numpy()
        out['nll'] = float(F.cross_entropy(zt, torch.from_numpy(y)))
        if case.get('fit'):
            out['fit'] = fit_temperature(np.array(case['logits'], dtype=np.float64), y)
    else:
        p = np.array(case['probs'], dtype=dtype)
        eps = np.finfo(dtype).eps
        out['nll'] = float(-np.mean(np.log(np.maximum(p[np.arange(n), y].astype(np.float64), eps))))
    K = p.shape[1]
    B = case['bins']
    conv = case['convention']
    conf, pred = top_label(p)
    hit = (pred == y)
    out['accuracy'] = float(hit.mean())
    onehot = np.eye(K)[y]
    out['brier'] = float(np.mean(np.sum((p.astype(np.float64) - onehot) ** 2, axis=1)))
    top = errors(masks_for(conf, dtype, B, conv), conf, hit, n)
    out.update(ece=top['l1'], mce=top['max'], rmsce=top['l2'], rmsceDebiased=top['l2deb'], counts=top['counts'])
    em = equal_mass_netcal(conf, hit, B) if conv == 'netcal' else equal_mass_uc(conf, hit, B)
    out['adaptiveEce'] = em['l1']
    out['adaptiveCounts'] = em['counts']
    cw = 0.0
    for k in range(K):
        pk = p[:, k]
        cw += errors(masks_for(pk, dtype, B, conv), pk, (y == k), n)['l1']
    out['classwiseEce'] = cw / K
    return out


def main():
    req = json.load(sys.stdin)
    print(json.dumps({'torch': torch.__version__, 'results': [run(c) for c in req['cases']]}))


if __name__ == '__main__':
    main()
