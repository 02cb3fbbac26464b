"""The papers' maths as pure functions and classes: no paths, no configuration, no I/O.

van Groeningen et al. (2023): the cone cuts (Eqs. 1-2, :mod:`.cuts`), preprocessing,
the isochrone curve, the selection (Eqs. 3-12, :mod:`.selection`), the features
(Eqs. 13-17, :mod:`.features`), set assembly and the network (:mod:`.network`),
the estimator (:mod:`.classifier`), training (:mod:`.training`) and the membership
Monte Carlo (:mod:`.membership`). The other membership methods: HDBSCAN as T22
(:mod:`.hdbscan_t22`), UPMASK (:mod:`.upmask`), XDGMM (:mod:`.xdgmm`) and
XDGMM + UPMASK as Peña Ramírez et al. 2022 (:mod:`.penaramirez22`).

Importing this package imports none of them (torch is loaded only with the network).
"""
