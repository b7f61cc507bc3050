"""Independent references for test/recalibrators.test.ts (run by /usr/bin/python3).

stdin: JSON {"cases": [...]}; stdout: JSON {"results": [...]}, one per case.
  {"kind": "scaling", "method": "vector"|"matrix", "z": [[...]], "y": [...], "lambda": l, "mu": m,
   "held": [[...]], "heldY": [...]}
      -> scipy.optimize.minimize (BFGS, analytic gradient, gtol 1e-12) of the mean NLL (+ ODIR
         penalties) from the identity; returns the optimum, and the NLL of the held-out rows under it.
  {"kind": "isotonic", "x": [...], "y": [...], "t": [...]}
      -> sklearn IsotonicRegression(out_of_bounds='clip').fit(x, y).predict(t)
"""
import json
import sys

import numpy as np


def scaling(case):
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    z = np.asarray(case["z"], dtype=np.float64)
    y = np.asarray(case["y"], dtype=np.int64)
    n, k = z.shape
    lam, mu = case.get("lambda", 0.0), case.get("mu", 0.0)
    vector = case["method"] == "vector"
    onehot = np.eye(k)[y]

    def unpack(theta):
        if vector:
            return np.diag(theta[:k]), theta[k:]
        m = theta.reshape(k, k + 1)
        return m[:, :k], m[:, k]

    def logits(theta, zz):
        w, b = unpack(theta)
        return zz @ w.T + b

    def f(theta):
        u = logits(theta, z)
        lse = logsumexp(u, axis=1)
        value = np.mean(lse - u[np.arange(n), y])
        p = np.exp(u - lse[:, None])
        r = (p - onehot) / n  # d/du
        if vector:
            grad = np.concatenate([(r * z).sum(0), r.sum(0)])
        else:
            gw = r.T @ z
            gb = r.sum(0)
            grad = np.concatenate([gw, gb[:, None]], axis=1).reshape(-1)
        if not vector and (lam or mu):
            w, b = unpack(theta)
            off = w - np.diag(np.diag(w))
            value += lam / (k * (k - 1)) * np.sum(off**2) + mu / k * np.sum(b**2)
            gpen = np.concatenate([2 * lam / (k * (k - 1)) * off, (2 * mu / k * b)[:, None]], axis=1).reshape(-1)
            grad = grad + gpen
        return value, grad

    start = np.concatenate([np.ones(k), np.zeros(k)]) if vector else np.concatenate([np.eye(k), np.zeros((k, 1))], axis=1).reshape(-1)
    res = minimize(f, start, jac=True, method="BFGS", options={"gtol": 1e-12, "maxiter": 100000})
    value, grad = f(res.x)
    held = np.asarray(case["held"], dtype=np.float64)
    hy = np.asarray(case["heldY"], dtype=np.int64)
    u = logits(res.x, held)
    held_nll = float(np.mean(logsumexp(u, axis=1) - u[np.arange(len(hy)), hy]))
    return {"value": float(value), "gradientNorm": float(np.max(np.abs(grad))), "heldNll": held_nll}


def isotonic(case):
    from sklearn.isotonic import IsotonicRegression

    x = np.asarray(case["x"], dtype=np.float64)
    y = np.asarray(case["y"], dtype=np.float64)
    t = np.asarray(case["t"], dtype=np.float64)
    r = IsotonicRegression(out_of_bounds="clip").fit(x, y)
    return {"predict": [float(v) for v in r.predict(t)], "thresholds": [float(v) for v in r.X_thresholds_]}


def main():
    req = json.load(sys.stdin)
    out = [scaling(c) if c["kind"] == "scaling" else isotonic(c) for c in req["cases"]]
    json.dump({"results": out}, sys.stdout)


if __name__ == "__main__":
    main()
