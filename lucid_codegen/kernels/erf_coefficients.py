"""Polynomial coefficients of ``erf`` (``lucid_codegen.kernels.vector_erf``), and the script that
computed them: ``python -m lucid_codegen.kernels.erf_coefficients`` (needs ``mpmath``) prints
this table again.

Each piece is ``(lo, hi, coefficients)``: a polynomial in ``u = (t - c) / h`` with
``c, h`` the centre and half-width of ``[lo, hi]``, coefficients lowest degree first,
interpolating a smooth function at the Chebyshev nodes of the interval (near-minimax),
computed with 50 significant digits and rounded to float64:

* ``SMALL``: ``erf(x) / x`` as a function of ``t = x^2`` on ``[0, 1]`` (degree 11,
  relative error 8e-18);
* ``TAIL``: ``erfcx(x) = erfc(x) e^{x^2}`` of ``t = x`` on ``[1, 2.5]`` and ``[2.5, 6]``
  (degree 18, relative error 5e-18 and 3e-15 -- the second piece only ever
  contributes ``erfc(x) <= 4.1e-4``, so its absolute error stays below 1.3e-18).

>>> SMALL[0], SMALL[1]
(0.0, 1.0)
>>> len(TAIL[0][2]), TAIL[1][:2]
(19, (2.5, 6.0))
"""
from __future__ import annotations

SMALL = (0.0, 1.0, (
    0.9654687386698673,
    -0.1405360890227171,
    0.019852496688984218,
    -0.0022854855611440855,
    0.00021751715603563488,
    -1.75371694412802e-05,
    1.2233827638093572e-06,
    -7.51156925108609e-08,
    4.115751500265885e-09,
    -2.035231956483527e-10,
    9.21125018742823e-12,
    -3.80659122412214e-13,))

TAIL = (
    (1.0, 2.5, (
        0.2849722347374364,
        -0.09823225913586393,
        0.031367041923986594,
        -0.009390935492459373,
        0.0026591791241936573,
        -0.0007168914456252124,
        0.00018495607833968411,
        -4.5856167052362756e-05,
        1.0962893607629422e-05,
        -2.5345110647073046e-06,
        5.680167343563448e-07,
        -1.236598236632184e-07,
        2.6200160920446488e-08,
        -5.4141292740262066e-09,
        1.0913862125386419e-09,
        -2.1212376757225127e-10,
        4.093847922889574e-11,
        -9.189420172081477e-12,
        1.691370878456324e-12,)),
    (2.5, 6.0, (
        0.12934527478598792,
        -0.05065257997558998,
        0.019391340463739106,
        -0.0072669543166608746,
        0.0026690037168546486,
        -0.0009617329943690538,
        0.0003403116175739242,
        -0.0001183540692437326,
        4.048624541815416e-05,
        -1.3632246843805208e-05,
        4.5207167905676e-06,
        -1.476177437211989e-06,
        4.757207180019287e-07,
        -1.5312337863738423e-07,
        4.800033821552839e-08,
        -1.3135483422807304e-08,
        4.044217888551993e-09,
        -2.091295143503896e-09,
        6.19202332443258e-10,)),
)


#: float32's pieces (``vector_erf`` evaluates them in float32): ``erf(x)/x - 1`` as a
#: polynomial in t = x^2 itself on [0, 1] (degree 6, absolute error 2e-9; the result is
#: ``fma(x, Q, x)``, so the leading 1 is exact), and erfcx on [1, 3.92] in the centred
#: variable (degree 11, relative error 3e-8; above 3.92, erf rounds to 1 in float32)
SMALL32 = (0.0, 1.0, (
    0.12837916584835093, -0.37612626666720334, 0.11283594715160218, -0.026854212010626412,
    0.005189087423433974, -0.000801686428716587, 7.875875062685488e-05))
TAIL32 = (1.0, 3.92, (
    0.21382067212361075, -0.11151689357405307, 0.05525644055709031, -0.026167926448291946,
    0.011895553752388047, -0.0052145173147493395, 0.002228367521301452, -0.0009144294973339667,
    0.00032943229604249244, -0.0001292924459220095, 8.071259061874183e-05, -2.9330247641645853e-05))

#: ``erfc`` (``vector_erf.emit_erfc``): one formula on the whole range, for each dtype
#: ``(p, coefficients)``: erfc(z) = t e^{-z^2} S(u) for z = |x|, t = 1 / (1 + p z) in
#: (0, 1], u = 2t - 1, S interpolating erfcx(z) / t (smooth on [0, 1], S(-1) = p/sqrt(pi)
#: at z = infinity). float32: p = 1/2, degree 10, relative error 2.8e-8; float64:
#: p = 1/4, degree 24, relative error 4e-18.
ERFC32 = (0.5, (
    0.5107913526210115, 0.3435803125493544, 0.13973594579655535, 0.01822174911458144,
    -0.010753310882746258, -0.003243733067797946, 0.0015338470443377152, 0.0004310400216422833,
    -0.0003047190864122867, -3.676436163571195e-05, 4.428841467145517e-05))
ERFC64 = (0.25, (
    0.27399891525012277, 0.2441371822702205, 0.19330217556630927, 0.13521345782830863,
    0.08271289696950268, 0.04350273430998323, 0.01909537872735127, 0.006592513335173418,
    0.0015280139133715981, 7.023971479707697e-05, -0.00011376316484544182, -4.420319201788329e-05,
    -9.08832439127124e-07, 4.715163962912606e-06, 1.1737640453840473e-06, -3.558862359875305e-07,
    -2.119705711612132e-07, 1.8600660669230044e-08, 3.17381655007054e-08, 6.884202392087647e-11,
    -4.552190089879754e-09, -1.762804719439247e-10, 5.812034872676593e-10, 1.9116349931153875e-11,
    -4.6556621914315385e-11))


def _fit(f, lo, hi, degree):  # pragma: no cover - run by hand, needs mpmath
    import mpmath as mp
    n = degree + 1
    c, h = (mp.mpf(lo) + hi) / 2, (mp.mpf(hi) - lo) / 2
    nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
    vander = mp.matrix([[u ** j for j in range(n)] for u in nodes])
    coef = mp.lu_solve(vander, mp.matrix([f(c + h * u) for u in nodes]))
    return [float(coef[j]) for j in range(n)]


def _fit_raw(f, lo, hi, degree):  # pragma: no cover - run by hand, needs mpmath
    """Like ``_fit``, coefficients of the polynomial in t itself (not centred)."""
    import mpmath as mp
    n = degree + 1
    c, h = (mp.mpf(lo) + hi) / 2, (mp.mpf(hi) - lo) / 2
    nodes = [c + h * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
    coef = mp.lu_solve(mp.matrix([[t ** j for j in range(n)] for t in nodes]), mp.matrix([f(t) for t in nodes]))
    return [float(coef[j]) for j in range(n)]


def _erfcx_over_t(p):  # pragma: no cover - run by hand, needs mpmath
    """erfcx(z) / t as a function of t = 1 / (1 + p z) on [0, 1]."""
    import mpmath as mp

    def f(t):
        if t == 0:
            return p / mp.sqrt(mp.pi)
        z = (1 / t - 1) / p
        return mp.erfc(z) * mp.exp(z * z) / t
    return f


def _main():  # pragma: no cover
    import mpmath as mp
    mp.mp.dps = 50
    q32 = _fit_raw(lambda t: (mp.erf(mp.sqrt(t)) / mp.sqrt(t) if t > 0 else 2 / mp.sqrt(mp.pi)) - 1, 0, 1, 6)
    tail32 = _fit(lambda x: mp.erfc(x) * mp.exp(x * x), 1.0, TAIL32[1], 11)
    print(f"SMALL32 = (0.0, 1.0, ({', '.join(map(repr, q32))}))")
    print(f"TAIL32 = (1.0, {TAIL32[1]}, ({', '.join(map(repr, tail32))}))")
    for name, (p, coeffs) in (("ERFC32", ERFC32), ("ERFC64", ERFC64)):
        print(f"{name} = ({p}, ({', '.join(map(repr, _fit(_erfcx_over_t(p), 0.0, 1.0, len(coeffs) - 1)))}))")
    small = _fit(lambda t: mp.erf(mp.sqrt(t)) / mp.sqrt(t) if t > 0 else 2 / mp.sqrt(mp.pi), 0, 1, 11)
    erfcx = lambda x: mp.erfc(x) * mp.exp(x * x)  # noqa: E731
    tails = [_fit(erfcx, lo, hi, 18) for lo, hi in ((1.0, 2.5), (2.5, 6.0))]
    print(f"SMALL = (0.0, 1.0, ({', '.join(map(repr, small))}))")
    print(f"TAIL = ((1.0, 2.5, ({', '.join(map(repr, tails[0]))})),")
    print(f"        (2.5, 6.0, ({', '.join(map(repr, tails[1]))})))")


if __name__ == "__main__":  # pragma: no cover
    _main()
