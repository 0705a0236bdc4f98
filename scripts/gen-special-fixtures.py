#!/usr/bin/env python3
"""Reference data and coefficient tables for engine/special.ts and kernels/special.wgsl.

Usage:
  python3 scripts/gen-special-fixtures.py            # writes test/fixtures/special-functions.json
  python3 scripts/gen-special-fixtures.py --coeffs   # prints the coefficient tables used in the sources

Requires mpmath (and numpy for --coeffs). All references are computed with mpmath at 40 significant
digits and rounded once to the nearest double; inputs are plain doubles (exact in mpmath).
"""
import json
import os
import sys

import mpmath as mp

mp.mp.dps = 40

X0 = mp.findroot(mp.digamma, mp.mpf('1.4616321449683623'))  # positive root of digamma


def f64(v):
    v = float(mp.mpf(v))
    # keep only finite, normal doubles (subnormal references carry no relative precision)
    if v != v or v in (float('inf'), float('-inf')) or (v != 0 and abs(v) < 2.2250738585072014e-308):
        return None
    return v


def logspace(a, b, n):
    return [float(mp.mpf(10) ** (mp.mpf(a) + (mp.mpf(b) - a) * i / (n - 1))) for i in range(n)]


def gelu(x):
    x = mp.mpf(x)
    return x * mp.erfc(-x / mp.sqrt(2)) / 2


def gelu_grad(x):
    x = mp.mpf(x)
    return mp.erfc(-x / mp.sqrt(2)) / 2 + x * mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def fixture():
    pos = logspace(-3, 4, 71)
    pos += [1e-300, 1e-30, 1e-10, 1e-6, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 7.5, 10.0, 12.5,
            1e5, 1e6, 1e10, 1e15, 1e100]
    for c in (1.0, 2.0):
        for k in (1, 2, 4, 6, 8, 10, 12, 14):
            pos += [c + 10.0 ** -k, c - 10.0 ** -k]
    x0 = float(X0)
    near_root = [x0] + [x0 + s * 10.0 ** -k for k in (2, 4, 6, 8, 10, 12, 14) for s in (1, -1)]
    neg = [-1e-8, -0.1, -0.5, -0.9, -1.5, -2.3, -2.5, -3.7, -10.7, -20.25, -100.5]
    out = {'lgamma': [], 'digamma': [], 'trigamma': [], 'erf': [], 'erfc': [], 'gelu': [], 'geluGrad': []}
    for x in sorted(set(pos + neg + near_root)):
        out['lgamma'].append([x, f64(mp.log(abs(mp.gamma(x))) if x < 0 else mp.loggamma(x))])
        out['digamma'].append([x, f64(mp.digamma(x))])
        out['trigamma'].append([x, f64(mp.psi(1, x))])
    erf_x = [i / 20 for i in range(-120, 121)] + [1e-300, 1e-20, 1e-8, -1e-8, 7.0, 10.0, 26.0, -26.0]
    for x in sorted(set(erf_x)):
        out['erf'].append([x, f64(mp.erf(x))])
    erfc_x = [i / 10 for i in range(-60, 271)] + [1e-20, -1e-20]
    for x in sorted(set(erfc_x)):
        out['erfc'].append([x, f64(mp.erfc(x))])
    for x in sorted(set([i / 8 for i in range(-80, 81)] + [-30.0, -37.0, 30.0])):
        out['gelu'].append([x, f64(gelu(x))])
        out['geluGrad'].append([x, f64(gelu_grad(x))])
    # drop points whose reference is not a finite double (e.g. underflow to 0 is kept, inf dropped)
    for k in out:
        out[k] = [p for p in out[k] if p[1] is not None]
    return out


def coeffs():
    import numpy as np

    def fmt(v, n=17):
        return mp.nstr(mp.mpf(v), n, min_fixed=-1, max_fixed=1, strip_zeros=False)

    print('// digamma root x0 =', mp.nstr(X0, 30))
    hi = float(X0)
    print('// f64 split: hi =', repr(hi), ' lo =', repr(float(X0 - hi)))
    hi32 = float(np.float32(hi))
    print('// f32 split: hi =', repr(hi32), ' lo =', repr(float(np.float32(float(X0 - hi32)))))
    psi_hi32 = mp.digamma(mp.mpf(hi32))
    print('// f32 kernels expand around a = f32(x0) instead: psi(a) =', repr(float(np.float32(float(psi_hi32)))),
          ' (Taylor coefficients n >= 1 at a differ from those at x0 by ~n*1e-8 relative: negligible in f32)')
    print('// zeta(k) - 1 / k * (-1)^k, k = 2..30   (lgamma(2+e) = (1-gamma) e + sum c_k e^k)')
    print('// 1 - gamma =', fmt(1 - mp.euler))
    for k in range(2, 31):
        print(fmt((-1) ** k * (mp.zeta(k) - 1) / k) + ',')
    print('// digamma Taylor at x0: psi(x0+d) = sum_{n>=1} t_n d^n,  t_n = (-1)^(n+1) zeta(n+1, x0)')
    for n in range(1, 46):
        print(fmt((-1) ** (n + 1) * mp.zeta(n + 1, X0)) + ',')
    print('// erfcx Chebyshev-interpolant fits (monomial in t = (x - c) / h)')
    for (lo, up, deg) in ((0.75, 2.0, 10), (2.0, 4.0, 10)):
        n = deg + 1
        t = np.cos(np.pi * (np.arange(n) + 0.5) / n)
        xs = (lo + up) / 2 + (up - lo) / 2 * t
        ys = np.array([float(mp.erfc(x) * mp.exp(mp.mpf(x) ** 2)) for x in xs])
        p = np.polynomial.chebyshev.cheb2poly(np.polynomial.chebyshev.chebfit(t, ys, deg))
        print(f'// [{lo}, {up}]: c = {(lo + up) / 2}, h = {(up - lo) / 2}; coefficients t^0 .. t^{deg}')
        for c in p:
            print(repr(float(c)) + ',')


if __name__ == '__main__':
    if '--coeffs' in sys.argv:
        coeffs()
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, '..', 'test', 'fixtures', 'special-functions.json')
        data = fixture()
        with open(path, 'w') as fh:
            json.dump({'generator': 'scripts/gen-special-fixtures.py (mpmath %s, 40 digits)' % mp.__version__,
                       **data}, fh, separators=(',', ':'))
            fh.write('\n')
        print('wrote', os.path.normpath(path), {k: len(v) for k, v in data.items()})
