"""The on-card minutiae matcher: a pure function from two templates to a score.

The card runs it inside VERIFY; the accuracy harness (`host.bio.eval`) calls the
same functions directly to draw the DET curve, since the score never leaves the
card. Nothing here touches card state: `extract` and `compare` are pure.

The method is a local-structure pairing followed by a global consolidation,
after the Minutia Cylinder-Code of Cappelli, Ferrara and Maltoni (IEEE PAMI
32(12), 2010), cut down to what a card can afford:

1. Local structures (`extract`). Around each minutia, a cylinder: a disc of
   radius `RADIUS` in the minutia's own frame (so it is invariant to rotation
   and translation), cut into `NS` x `NS` spatial cells and `ND` direction
   layers. A cell's bit is set when a neighbouring minutia lies near the
   cell's centre with a relative direction in that layer. Bits are packed in
   one integer, so comparing two cylinders is an AND, an XOR and two popcounts.
   The lookup tables follow these knobs through `build_tables` (call it again
   after changing them).
   `TYPE_LAYERS` (off until the thresholds are recalibrated with it) doubles
   the layers: endings light one block of `ND`, bifurcations the other,
   minutiae of unknown or other type both. A true neighbour keeps its type in
   about 0.82 of pairs (10 % flips per impression), a chance neighbour in about
   half, so the split lowers chance pairs' similarity more than true ones': on
   the hard setting's weak genuine pairs, the true pairs chosen for the
   relaxation have a median similarity of 0.32 against 0.22 for the chance
   ones beside them (0.43 against 0.34 without). Measured (hard setting,
   tuning seeds 11-13, own DET, FNMR at FMR 1 % / 0.1 % and EER, with
   `MAX_ROTATION` 8): local score alone 10.7 / 21.5 / 6.3 % -> 7.5 / 14.4 /
   4.0 %, combined 5.6 / 9.2 / 3.7 % -> 4.9 / 8.3 / 3.5 %; evaluation seeds
   1-3: local 15.5 / 31.2 / 7.1 % -> 11.7 / 20.4 / 6.2 %, combined 7.7 /
   12.8 / 4.5 % -> 7.3 / 14.0 / 4.4 %.
   Every score drops with it (impostors' more), so at the shipped thresholds
   the hard FNMR would rise: they must be recalibrated with it. (With the
   earlier global score W^2 / (r x p), thresholds estimated the calibration's
   way on its then binding easy setting, seeds 9001-9004, went from 449 / 561
   to 373 / 478 and the hard FNMR on seeds 1-3 there from 11.5 / 22.4 % to
   11.2 / 21.8 %.) Templates without types (NIST .xyt) light both blocks and
   compare as without the split. VERIFY time: unchanged within the noise.
   Retried on top of the chance corrections below (`python -m host.bio.tails`, the hard
   FNMR at the highest setting's thresholds): tuning seeds 11-13 5.6 / 10.8 % -> 5.0 /
   9.7 %, but seeds 14-16 5.7 / 11.8 % -> 5.8 / 12.8 %: still off.
   Each cylinder also has a validity mask: the cells inside the area the
   template actually covers (its convex hull, widened by `HULL_MARGIN`), so a
   partial impression is not penalised for minutiae it could not have seen.
2. Local similarity (`_local_pairs`). For every reference/probe pair whose
   directions differ by at most `MAX_ROTATION`, the similarity of their
   cylinders on the cells valid in both (1 - |a xor b| / (|a| + |b|)).
   `MAX_ROTATION` is 8 steps, 45 degrees (it was 10, 56 degrees): two
   placements of a finger differ by the difference of two poses (at most 40
   degrees on the hard setting, beyond 34 degrees for 2 % of genuine pairs, a
   triangular law) plus 6 degrees of direction noise per impression and up to
   8 of shear, so nearly every true pair still compares, while a fifth fewer
   chance pairs (17 of 64 direction steps instead of 21) compete with the true
   ones for the one-to-one choice below. Measured (hard setting, own DET, FNMR
   at FMR 1 % / 0.1 % and EER): local score alone, tuning seeds 11-13, 11.6 /
   22.6 / 6.7 % -> 10.7 / 21.5 / 6.3 %, evaluation seeds 1-3 15.8 / 32.3 /
   7.8 % -> 15.5 / 31.2 / 7.1 %; combined score, tuning 5.3 / 9.1 / 3.9 % ->
   5.6 / 9.2 / 3.7 % (noise), evaluation 8.1 / 14.2 / 4.7 % -> 7.7 / 12.8 /
   4.5 %. At the shipped thresholds 222 / 343 (`cardemu bio eval`, seeds
   1-3): hard FNMR, pooled, 9.4 / 18.7 % -> 9.0 / 18.1 %; the FMR at 222 on
   easy / medium / hard 1.04 / 0.86 / 0.58 %, 1.05 / 0.78 / 0.53 % and
   0.57 / 0.53 / 0.44 % (before: 1.06 / 0.88 / 0.63 %, 1.01 / 0.68 / 0.49 %,
   0.70 / 0.50 / 0.51 %), at 343 at most 0.11 % (before: 0.11 %).
3. Relaxation (`_choose`, `_relax`, `_local_score`). The best `MAX_PAIRS`
   one-to-one pairs (at most min(n, m)) are refined: a pair keeps its weight
   only if other pairs are geometrically compatible with it (distances,
   relative directions and radial angles agree within tolerances that widen
   with distance, for elastic distortion). The
   local score is the mean relaxed similarity of the `n_P` most efficient
   pairs (fewer surviving pairs count as zeros). `MAX_PAIRS` is 36 (it was 24):
   it binds only when both templates are larger than that (full windows of
   40-60 minutiae). There each pair's support is averaged over more pairs: a
   true pair's comes from the other true pairs, more of which now enter, a
   chance pair's (two prints with the same ridge flow) from nearly none, so
   the impostors of the easy setting, which set the thresholds, score lower
   (measured: README).
4. Consolidation without one rigid transform (`_seeds`, `_global`,
   `_pair_up`). Each of the `GLOBAL_SEEDS` strongest relaxed pairs seeds a
   region growing:
   minutiae are paired outwards from the seed, each where the pairs already
   made nearby predict its mate (a smooth displacement field, as plastic
   distortion is), within tolerances that are tight next to made pairs and
   grow with the distance from them. Pairs weigh by their residual error and
   by whether their types agree: a pair of an ending and a bifurcation weighs
   `TYPE_MISMATCH` = 0.2 (it was 0.4), the likelihood ratio of a disagreement
   to that of an agreement between true mates and chance neighbours: with a
   10 % type flip per impression 18 % of true pairs disagree, against about
   half of chance pairs (0.36 / 1.64 = 0.22). The global score (`_global_score`)
   is how far W, the summed pair weight, lies above what chance pairs give: under
   the impostor hypothesis their expected weight E grows with r and p, the
   minutiae of each template inside the other's area (at least
   `GLOBAL_MIN_OVERLAP`), AND with the templates' densities (minutiae per unit of
   area); the score is the Poisson tail's significance -log10 P(X >= W | E)
   (its Chernoff bound) over `SIGNIFICANCE_MAX`. It replaced W^2 / (r x p), which
   ignored the density: the easy setting of `host.bio.difficulty` (no missed
   minutiae, so denser templates) gave the highest impostor scores, set the
   thresholds, and the hard setting's FMR at them was far under its target at the
   cost of its FNMR. Now the impostor tails of the three settings coincide
   (README, "Match-on-card accuracy"). The global score is the MEAN of the
   `GLOBAL_SEEDS` growings' significances, not the best one's (`_pooled`,
   `GLOBAL_POOL`); the score is local^0.5 x global^0.5 (`_fuse`).

The growings pooled (`_pooled`; issue 24, the fusion stage; figures: `/work/exp/tails.py`, the
hard FNMR at the highest of the three settings' FMR 1 % / 0.1 % thresholds, tuning seeds 11-13
then 14-16). The best growing's significance alone: 5.6 / 10.8 % and 5.7 / 11.8 %; their mean
(`GLOBAL_POOL` 1): 5.1 / 10.6 % and 5.6 / 10.3 % (own DET 4.4 / 8.3 % against 5.5 / 9.4 % on
11-13). Every score drops, so the thresholds were recalibrated: 83 / 153 (`cardemu bio
calibrate`, per setting 83 / 153, 79 / 138, 78 / 139, against 168 / 254, 167 / 262, 166 /
256 before); at them, evaluation seeds 1-3 pooled (`cardemu bio eval --setting all
--fingers 60 --impressions 4 --impostors 10000 --seed N`), the hard FNMR is 7.1 / 14.9 %
(8.0 / 14.7 % at 168 / 262 before): the 0.1 % point is the easy setting's. Easy / medium / hard
thresholds 98 / 174, 90 / 148, 87 / 145 (11-13) and 94 / 156, 87 / 146, 89 / 158 (14-16),
against 166 / 256, 159 / 246, 160 / 236 and 166 / 231, 161 / 228, 163 / 252. The easy
setting now leads the hard one by more (98 against 87 at 1 %: its impostors' growings agree
a little more often), which no retuned chance constant takes back (below: "Re-tuned with the
growings pooled"). Made-up arch-flow probes (`/work/exp/arch.py`) over each variant's own
highest thresholds: 149 / 10 of 3,000 (before 176 / 13); the tests' blind probes' top scores
43 (dense), 47 (uniform), 20 (sparse), 34 (clusters) against 98 (before 74, 99, 49, 65
against 166). `compare` time:
unchanged (hard seed 11, 500 comparisons each way interleaved twice: median 2.04 ms against
2.24 ms, noise). With `GLOBAL_SEEDS` 8: 5.4 / 11.3 % on 11-13 (92 / 172); 3 / 4 / 5:
5.7 / 12.2, 5.5 / 12.2, 5.6 / 11.5 % and 5.8 / 11.5, 5.8 / 11.1, 5.6 / 10.4 %: 6 stays.
Evaluation seeds 1-3, once: 8.0 / 15.3 % -> 7.2 / 14.2 % (thresholds 98 / 166, 90 / 173,
92 / 161 against 169 / 243, 164 / 266, 166 / 250). Own DET (`/work/exp/quick.py`, FNMR at FMR
1 % / 0.1 %, EER): seeds 11-13 5.5 / 8.8 / 3.41 % -> 4.4 / 8.3 / 3.33 %, seeds 1-3 7.8 / 13.3
/ 4.38 % -> 6.9 / 12.4 / 4.53 %.
Why: in a genuine comparison nearly every seed is a true pair and grows into the same
alignment (all five other growings share 2 or more pairs with the best in 81 % of hard
genuine comparisons, in 3 % of impostor ones), so the mean stays near the best; an
impostor's best growing is one lucky alignment among growings that mostly find nothing
(a growing's W exceeds its chance weight E in 45 % of impostor growings), and the max
picked it. Unlike the union of the growings (tried on the consolidation and not kept,
below), a mean can never exceed the best growing: it only lowers comparisons whose other
seeds grow little. Tried on the fusion and not kept (the same figures, 11-13 then 14-16;
before 5.6 / 10.8 and 5.7 / 11.8 %; measured on dumped components that reproduce every
score of `compare` exactly):
- The sum of the two parts' significances (Fisher-like) instead of a product. The local
  score's impostor tail (36,000 impostors of seeds 11-13, the three settings) is
  exponential above its 90 % quantile: P(local > x) = 0.1 exp(-523 (x - 0.0106)) (it
  predicts 0.0150 / 0.0194 for the 99 / 99.9 % quantiles, measured 0.0150 / 0.0209). Added
  with weight c to the global's own significance (its Chernoff -log10 P, which is far
  from calibrated: 0.20 at the impostors' 99 % quantile), c = 0.09 / 0.18: 5.9 / 13.3, 5.5
  / 12.4 % and 5.7 / 12.1, 5.8 / 13.1 %; to the global's empirically fitted exponential
  tail significance (q90 0.054, b 15.4), c = 0.5 / 1 / 1.4: 6.0 / 14.4, 5.6 / 11.8, 5.8 /
  14.1 % and 5.7 / 11.9, 5.7 / 13.0, 6.1 / 13.6 %. The global's tail is heavier than
  exponential (a Pareto tail, Hill index 1.53 above its 90 % quantile; the easy setting's
  99.9 % quantile 0.56 against the hard one's 0.35), so a sum lets its far tail set the
  0.1 % threshold; the product (a sum of logarithms) compresses it. Pareto global plus
  exponential local, c 0.5 / 1: 5.6 / 14.1, 5.9 / 19.2 %. Products of other weights
  (`LOCAL_WEIGHT` 0.4 / 0.6): 6.3 / 12.0, 5.6 / 10.9 % and 6.0 / 11.5, 5.8 / 11.3 %.
- Agreement as a bonus: the other growings sharing 2+ pairs with the best are as common
  among the impostors over the 1 % threshold (all five in 19-27 %) as among the weakest
  fifth of genuine comparisons (35-38 %). The best growing's significance x (1 + beta x
  the agreeing growings / 5), beta 0.1 / 0.2: 5.6 / 10.6, 5.6 / 10.6 % and 5.6 / 11.4, 5.6 /
  11.6 %; its W x (1 + beta (the share of its pairs found by 2+ growings - 0.5)), beta 0.1
  / 0.2: 5.6 / 10.5, 5.6 / 10.8 % and 5.6 / 11.7, 5.8 / 11.0 %: noise.
- A look-elsewhere correction for the max over the seeds: the max raises the genuine
  comparisons' 10 % quantile of the significance 3 x (0.10 -> 0.30 bits, the first seed's
  growing against the best of six; 14-16: 0.10 -> 0.29) and the impostors' 99 % quantile
  1.7 x (0.12 -> 0.20; 0.12 -> 0.21): it inflates genuine comparisons more, so no
  correction is due. Measured anyway: bits - lambda log10(the growings not agreeing with
  the best), lambda 0.1 / 0.2: 6.0 / 11.1, 6.1 / 11.6 % and 5.7 / 11.5, 6.4 / 10.8 %; every
  growing's bits - 0.03 / 0.06: 5.8 / 10.9, 6.3 / 11.3 % and 5.8 / 11.9, 6.1 / 11.6 %.
- Other poolings of the six significances: the mean of the best 2 / 3 / 4 / 5: 5.6 /
  11.1, 5.3 / 11.0, 5.2 / 10.9, 5.3 / 10.6 % and 5.4 / 10.6, 5.3 / 10.1, 5.3 / 10.4, 5.4 /
  10.4 %; (1 - a) x best + a x mean, a 0.5 / 0.75: 5.5 / 10.6, 5.3 / 10.7 % and 5.6 / 10.7,
  5.3 / 10.6 %; the power mean of order 0.5 / 2: 5.7 / 12.0, 5.5 / 10.7 % and 6.0 / 10.3,
  5.4 / 10.5 %; the median: 6.3 / 12.4, 6.3 / 11.2 %; best + 0.15 x second best: 5.5 /
  10.6, 5.6 / 11.1 %. With the mean, `LOCAL_WEIGHT` 0.4 / 0.6: 5.6 / 12.3, 5.0 / 11.2 % and
  5.6 / 10.6, 5.3 / 10.3 %: 0.5 stays.

The same impostor tail on every setting (issue 24). The shipped thresholds are the
highest setting's, and that was the easy one (no missed minutiae, no noise): on tuning
seeds 11-13 (12,000 impostors a setting) its thresholds were 216 / 339 (FMR 1 % /
0.1 %) against 192 / 276 on the hard setting, which cost the hard setting 6.2 / 13.2 %
FNMR at them against 5.6 / 9.2 % at its own. Measured by component (impostors, 99 / 99.9
% quantiles, easy / medium / hard): local 0.028 / 0.035, 0.022 / 0.029, 0.021 / 0.027;
global 0.025 / 0.064, 0.027 / 0.057, 0.025 / 0.048. The local tail is NOT a matter of
template size: in bins of min(n, m) from 20 to 40 the easy setting's 99 % quantile is
0.026-0.031 in every bin and the hard one's 0.020-0.023. It follows the cylinders' fill:
43.6 set bits on the easy setting against 38.1 (14.4 neighbours a minutia against 12.8;
the candidates' mean similarity 0.235 against 0.208), so `_chance_corrected` divides the
local score by the fill squared (the argument is there). The global score's W / E has the
same tail on the three settings at a given E, and does not depend on n x m at a given E
(99 % quantile 1.72, 1.66, 1.63, 1.59, 1.51 for n x m under 500, to 800, 1,100, 1,500 and
over, E 2.5-3.5): no look-elsewhere effect of larger templates. The chance weight grows
with the density far less than E assumed (`_density_term`, exponent 0.5). Together
(`FILL_EXP` 2, `FILL_REF` 30, `DENSITY_EXP` 0.5; `FILL_EXP` 0 and `DENSITY_EXP` 1 restore
the score before exactly), tuning seeds 11-13 (`python -m host.bio.tails`): thresholds 166 /
256, 159 / 246, 160 / 236, the hard FNMR at the highest 5.6 / 10.8 % (own DET 5.5 / 8.8 %,
EER 3.4 %); seeds 14-16: 166 / 231, 161 / 228, 163 / 252, 5.7 / 11.8 % (before 216 / 313,
202 / 292, 198 / 299, 6.7 / 12.7 %); evaluation seeds 1-3, once: 169 / 243, 164 / 266, 166
/ 250, 8.0 / 15.3 % (before 217 / 332, 206 / 326, 201 / 281, 8.7 / 16.9 %), own DET 7.8 /
13.3 % (before 7.7 / 12.8 %). Made-up arch-flow probes over each variant's own highest
thresholds: 176 / 13 of 3,000 (before: 211 / 13 over 216 / 339). Tried and not kept (the
same figures, the hard FNMR at the highest of the three settings' thresholds, before
6.2 / 13.2 %): each half alone, fill 6.5 / 13.0 %, density exponent 7.3 / 14.2 %; a look-elsewhere
(Bonferroni) correction of the significance, -lambda log10(n m / (r p)) bits, lambda 0.1 /
0.2 / 0.3 / 0.5: 6.6 / 13.1, 6.9 / 13.2, 7.1 / 13.6, 7.8 / 14.7 %; E growing as sqrt(r p)
to the power 0.75 / 0.5 / 1.25 / 1.5 (instead of 1, the constant matched at 20 minutiae):
8.3 / 14.5, 11.7 / 20.1, 6.7 / 15.0, 8.3 / 18.6 % (the genuine pairs' overlaps grow as
the impostors'); the local score over the comparison's mean candidate similarity (a null
estimated in the comparison; it holds the true pairs too) to the power 1 / 2: 6.3 / 12.6,
6.9 / 13.7 %. Neighbouring constants: `FILL_EXP` 1.5 / 2.5: 5.7 / 11.5, 5.8 / 10.6 %;
`DENSITY_EXP` 0.4 / 0.6: 5.6 / 10.6, 6.0 / 10.8 %; `FILL_REF` 25 / 35 / 40: 5.5 / 10.8,
6.1 / 11.3, 6.5 / 12.5 %; the fill as set bits per valid cell instead of per cylinder:
6.1 / 11.2 %; `GLOBAL_MIN_OVERLAP` 12 / 10 / 18: 5.4 / 10.0, 5.6 / 10.6, 7.3 / 12.9 %, but
at 12 the blind dense probes of the tests reach 161 against a 1 % threshold of 179 (the
floor is their guard), so it stays 15. The genuine scores drop less than the impostor
tails: the hard setting's 5 % / 10 % genuine quantiles from 172 / 288 to 147 / 248
(x 0.86), the thresholds x 0.77 / 0.76. Blind probes (tests) over the new thresholds:
none; their top score 74 (dense), 99 (uniform), 49 (sparse), 65 (clusters) against 166
(before: 13, 96, 74, 73 against 216). Compare time unchanged (median 2.9 ms). Every score
is lower with it (thresholds included): the shipped thresholds must be recalibrated.
Re-tuned with the growings pooled (`GLOBAL_POOL` 1; the same figures, tuning seeds 11-13
then 14-16, on dumped components that reproduce every score of `compare` exactly; before
5.09 / 10.65 % at easy / medium / hard thresholds 98 / 174, 90 / 148, 87 / 145, and 5.56 /
10.28 % at 94 / 156, 87 / 146, 89 / 158). By component (impostors, 99 / 99.9 % quantiles,
easy / medium / hard, 11-13): local 0.0139 / 0.0203, 0.0150 / 0.0201, 0.0156 / 0.0209 (the
fill correction still holds); pooled global 0.0100 / 0.0269, 0.0075 / 0.0188, 0.0071 /
0.0169 (14-16: 0.0094 / 0.0211, 0.0072 / 0.0164, 0.0078 / 0.0183). The easy setting's
excess is NOT its density: within each setting the pooled global's 99 % quantile FALLS with
the density (easy 0.0148 / 0.0096 / 0.0096 for rho under 12.5, 12.5-14 and over 14 per cm^2,
hard 0.0082 / 0.0071 / 0.0057), and at the same density the easy setting's is higher; a
growing's mean W / (sqrt(r p) x the density term) is 110, 108, 108 on the three settings
(the best growing's 145-146): the chance weight's mean is the same, the easy setting's
noise-free impressions only let more of an impostor's growings find the same lucky
alignment (its top impostors are a few look-alike finger pairs recurring in every pair of
their impressions: 9 finger pairs make its 13 highest of 12,000). So no chance constant
takes the lead back: `DENSITY_EXP` 0.2 / 0.3 / 0.4 / 0.6 / 0.7 / 0.8 / 1.0: 6.0 / 11.8, 5.6 /
11.4, 5.5 / 10.7, 5.0 / 11.1, 4.9 / 11.1, 4.9 / 11.3, 5.5 / 11.5 % (11-13; 0.4 on 14-16 5.6 /
10.4 %); `CHANCE_AREA` 110 (the mean over growings) / 125 / 135 / 155 / 165 / 180: 5.9 /
12.1, 5.7 / 11.9, 5.6 / 11.1, 5.2 / 11.1, 5.3 / 11.7, 5.7 / 11.5 % (145 stays: each growing
is still tested against its own chance weight, and the mean of the significances is what
is pooled, not of the weights); `FILL_EXP` 1.5 / 2.5 / 3 (`FILL_REF` 30): 5.7 / 11.0, 4.8 /
10.9, 4.7 / 10.9 %, but 14-16 at 2.5 / 3 (`FILL_REF` 25) 5.3 / 10.6, 5.4 / 11.2 %; the
pooled global divided by (rho / `DENSITY_REF`)^y, y 0.5 / 1 / 2: 5.1 / 11.2, 5.1 / 11.3, 5.3
/ 11.8 %; E times the cylinders' fill over 30 / 35 to the power 0.25 / 0.5 (a setting's
cleanliness rather than its density): it over-corrects (easy under hard) and costs genuine
pairs, 4.7-5.2 / 10.8-11.8 % and 5.3-6.0 / 10.6-13.2 %, at the power 1 8.7-10.6 / 17-21 %.
A grid of some 300 combinations of the four (`FILL_EXP` 1.5-3, `FILL_REF` 20-32.5,
`DENSITY_EXP` 0.4-0.8, `CHANCE_AREA` 130-160): the best sum of the four figures 31.0 (31.6
before), a flat optimum, differences of 1-3 genuine pairs in 1,080. Kept: `FILL_REF`
25 (was 30), 5.00 / 10.56 % at 82 / 146, 77 / 124, 73 / 122 and 5.37 / 10.28 % at 78 / 131,
74 / 122, 75 / 132 (own DET 4.44 / 8.15 % and 5.28 / 10.28 %), the only neighbour of the
constants that helps on both seed sets, by 1-2 genuine pairs (noise-level; see
`_fill_factor`). `GLOBAL_MIN_OVERLAP` 14 (with `FILL_REF` 25) would give 4.81 / 10.09 and
5.46 / 10.00 %, but it raises the hard setting's own thresholds (77 / 132) rather than
lowering the easy one's, and the tests' blind dense probes' top score from 36 to 49 (of 84):
the floor is their guard, so it stays 15.
Evaluation seeds 1-3, once, with `FILL_REF` 25: 7.2 / 14.2 -> 7.1 / 14.1 % (thresholds 82 /
139, 76 / 145, 79 / 135 against 98 / 166, 90 / 173, 92 / 161), own DET
(`/work/exp/quick.py`) 6.9 / 12.4 / 4.53 -> 6.7 / 12.5 / 4.31 %. Made-up arch-flow probes
over the new highest thresholds of 11-13 (82 / 146): 149 / 10 of 3,000, as before over 98 /
174; the tests' blind probes' top scores 36 (dense), 39 (uniform), 20 (sparse), 33
(clusters) against 82 (43, 47, 20, 34 against 98 before); `compare` time unchanged (hard
seed 11, 500 comparisons each way interleaved twice: median 2.20 ms against 2.24 ms).

Where genuine comparisons are lost is measured stage by stage against the
generator's ground truth by `host.bio.diagnose`. On the hard setting (seeds
1-3, with the parameters before the three changes named here), of the genuine pairs under
the FMR 1 % threshold, about one in six share fewer than 6 true minutiae (the
floor) and nearly all the others had a true seed: the consolidation from it
pairs about half of the true minutiae the two share (a median of 5 of 9 or 10).
The mates it misses lie 1-3 mm and 20-30 degrees from where the nearby pairs
predict them (Cappelli's brake zone shears the skin), so no smoother field or
second pass finds them without place tolerances that pair impostors as readily.
What helped: the type weight above, more pairs in the relaxation, and a
direction tolerance `GLOBAL_ANGLE` of 7 steps (39 degrees; it was 4): nearly
half of the missed mates were turned more than 4 steps from the direction the
pairs around them predict (6 degrees of direction noise per impression, and the
shear), and with mismatched types weighing 0.2 the wider tolerance adds more
true pairs than chance ones (README, "Match-on-card accuracy").

Tried on the consolidation and not kept (own DET on hard tuning seeds 11-13, FNMR
at FMR 1 % / 0.1 % and EER, with the W^2 / (r x p) score before `_global_score`:
5.6 / 11.0 / 4.05 % for the method above; differences under about half a point
are the noise of 1,080 genuine pairs): the best-supported candidate paired next
instead of the nearest to the seed, 5.8 / 10.8 / 3.89 %; the union of the
growings of several seeds (a few rigid regions) when they share 2-4 pairs and add
1-3 new ones, 6.3-8.6 / 11.0-16.9 % (impostors' growings from different seeds
add up as readily); a mate also accepted near the segment between two of the four
nearest pairs' offsets (two impressions are related by a blend of a few rigid
motions), 5.5-6.2 / 10.7-11.0 %; a pair weight divided by the candidates inside
its tolerance, 5.7-5.9 / 10.7-11.0 %; 12 seeds instead of 6, 5.3 / 10.1 / 3.82 %
(seeds 14-16: 6.1 / 11.0 / 4.51 % against 6.2 / 11.9 / 4.53 %); pair weights
1 - 0.9 u^2 in place (u the error over the tolerance) and 1 - 0.6 a in direction,
5.6 / 9.9 / 3.54 %, but 7.7 / 14.7 / 4.97 % on evaluation seeds 1-3 (7.9 / 13.5
/ 5.02 % without), and with `_global_score` 6.9 / 10.6 / 3.88 % against 5.3 /
9.1 / 3.90 %; the pairs' mean residual turn about their weighted centre added to
the predicted place (the skin's local rotation), 5.6 / 11.1 / 3.48 % (14-16: 6.2
/ 10.9 / 4.23 %), but 8.1 / 13.9 / 5.37 % on seeds 1-3, and with `_global_score`
5.6 / 8.8 / 3.62 % and 6.8 / 11.9 / 3.92 % (against 5.3 / 9.1 / 3.90 % and
6.4 / 12.9 / 4.07 %), over the hard floor of
`test_shipped_thresholds_on_an_evaluation_seed`. Of the true mates missed from a
true seed (seed 11), 46 % lie outside the place tolerance (a median 1.4 mm from
the prediction against a 1.1 mm tolerance), 40 % lose to a chance neighbour
nearer the prediction, 4 % fail the direction test. The genuine pairs rejected
at FMR 1 % (W^2 / (r x p) score) had a local score of 0.01-0.02, about the median
impostor's (0.012), while the highest impostors paired 6-12 minutiae by chance in
common areas of 13-20.

The mate choice in `_pair_up`, tried and not kept (issue 24; `python -m host.bio.tails`, hard tuning
seeds 11-13: the hard FNMR at the max over settings of the empirical FMR 1 % / 0.1 %
thresholds, then own DET; before the chance corrections 6.2 / 13.2 % at 216 / 339,
own 5.6 / 9.2 %, EER 3.73 %):
- The candidate of least joint cost (-2 ln of a likelihood ratio true mate / chance
  neighbour: the place error over the tolerance at a scale of 0.5, the direction error
  at 3 steps, a type disagreement -2 ln `TYPE_MISMATCH`) instead of the nearest: 6.6 /
  13.7 % (own 5.5 / 9.3 %). The true pairs found from a true seed hardly move (seed 11:
  12.27 -> 12.30 of 15.6 shared) while impostors' pairs weigh more: the rule picks
  the candidate the pair weight favours, chance or not.
- A second, leave-one-out pass: every reference minutia's mate predicted by the field
  of all the growing's pairs but its own, then all candidates assigned one-to-one by
  least place error (a conflict goes to the likelier pair, not to the one visited
  first): 6.1 / 11.7 % (own 5.4 / 8.8 %, EER 3.45 %), but seeds 14-16 6.7 / 12.7 ->
  7.2 / 12.4 %, pooled 11-16 6.4 / 12.8 -> 6.7 / 12.5 % (own 5.6 / 10.0 -> 5.7 / 10.4
  %), evaluation seeds 1-3 own 7.7 / 12.8 -> 7.8 / 12.2 %. It finds 12.43 true pairs
  instead of 12.27 and 1.41 false instead of 1.47 (seed 11), but every setting's
  impostor thresholds rise by 13-16 (easy 232 / 336); VERIFY +5 %. With the joint
  cost 6.7 / 13.3 %; its tolerance x 1.2, 0.9, 0.8: 6.8 / 13.9, 6.0 / 12.6, 6.2 / 14.4
  %; only dropping the growing's pairs it rejects (adding none) 6.6 / 12.5 %; two
  passes find no more true pairs than one. A more local field (weights 1 / (d^2 +
  `FIELD_SOFT`)^2) with it: 6.5 / 15.1 %.
- When no candidate lies inside the place tolerance, the nearest within 1.3-1.4 times
  it whose cylinders agree (local similarity from `_local_pairs` at least 0.4-0.47):
  hard own DET improves (5.0 / 8.4 %, EER 3.46 %, at 1.4 / 0.4: 12.80 true pairs
  found instead of 12.27, 1.69 false instead of 1.47), but the easy setting's impostors
  gain most (its thresholds 216 / 339 -> 246 / 388), so at the max over settings 6.6 /
  15.4 %; at 1.3 / 0.47 6.1 / 13.5 % (own 5.0 / 9.1 %), with such pairs weighing 0.4
  6.0 / 13.6 % (own 5.1 / 8.3 %): the gain is the hard setting's only and a null that
  priced these pairs per setting would be needed to keep it.
After that second pass (seed 11, true seeds), 984 of 5,148 true mates are still missed:
51 % never among the candidates (more than 1.76 mm from the seed's rigid alignment or
7 steps turned from it), 39 % outside the place tolerance (a median 1.29 mm from the
prediction against 1.01 mm), 10 % to a conflict, under 1 % to the direction gate; with
the prefilter widened (8 mm reach, 10 steps) the first become place misses (72 %, 1.5 mm
against 1.04 mm) and 0.1 more true pairs are found. So the mates are lost to the field's
prediction, not to the choice among the candidates inside the tolerance.
The far mate retried on top of the chance corrections below (`_chance_corrected`,
`_density_term`), which bring the easy setting's impostor tail down to the hard one's:
at 1.4 / 0.4 with such pairs weighing 0.4, 5.5 / 11.9 %; at 1.3 / 0.47, 5.5 / 11.4 %,
against 5.6 / 10.8 % without (tuning seeds 11-13, thresholds at the highest setting,
easy 173-174 / 264 against 166 / 256): not kept.

Tried on the null model and left off (issue 24; measured before the chance corrections
below, the same `host.bio.tails` figures, baseline 216 / 339, 202 / 295, 192 / 276 and 6.2 /
13.2 %, own DET 5.6 / 9.2 %): an ADAPTIVE chance weight measured on each comparison by
decoy growings, to price in the direction agreement of two coherent flows (the made-up
arch-flow probes of the strict xfail test, which meet far more chance pairs than E
assumes). The same region growing ran from 8 seeds that are certainly wrong (a
reference minutia of the consolidation's seeds paired with a probe minutia 7-12 mm
from its mate under the best alignment, with a compatible direction, one shift
direction each), and E was raised by max(1, 2 x the decoys' mean W / E). The decoys'
W / E (seed 11, median / 90 % quantile): impostors 0.45 / 0.58, genuine 0.45 / 0.60,
arch probes 0.63 / 0.80 (4-8 mm shifts: 0.49 / 0.63, 0.53 / 0.69, 0.67 / 0.83). Result:
201 / 339, 189 / 284, 176 / 261, hard FNMR at the highest 7.2 / 15.6 % (own DET 6.1 /
10.6 %); made-up arch probes passing its own thresholds 55 / 3 of 3,000 (211 / 13
without), the review's probe 575 -> 275. E' = max(E, 2 x the decoys' mean W): 6.6 /
13.6 % (own 6.4 / 10.1 %), arch 66 / 7; the grown weight only, factor 5: 9.0 / 16.9 %,
arch 36 / 1; the maximum over decoys, factor 1.3 (4-8 mm): 9.7 / 18.2 %, arch 32 / 1;
an over-dispersed Poisson (significance over 1 + E / 10): 6.1 / 13.2 %, noise.
Evaluation seeds 1-3, own DET: 7.7 / 12.8 % without, 9.0 / 15.3 % and 8.6 / 14.4 % with
the first two. Why it cannot work here: the generator's arch fingers have parallel
ridges, and shifted along them a GENUINE arch pair's decoys grow as much chance weight
(0.34-0.48) as a made-up probe's (median 0.30), so on seed 11 all 6 genuine arch pairs
(scores 319-957) fell to 0 with the grown-weight variant; a made-up arch-flow probe IS
statistically an arch finger of this generator (random places, directions from the
flow), so against an arch reference it is an arch-vs-arch impostor, and the
thresholds bound the FMR over the population, not per pattern class. Eight decoys cost
0.6 ms of `compare` (median 1.40 -> 2.02 ms, hard seed 11).

Tried for the local stage and left out (issue 24; hard setting, tuning seeds
11-13, own DET, FNMR at FMR 1 % / 0.1 %, local score alone then combined, the
combined one with the earlier global score W^2 / (r x p); with `MAX_ROTATION`
10 the baseline is 11.6 / 22.6 % and 5.6 / 11.0 %). The local
stage is short of information more than of tolerance: on the genuine pairs the
local score rejects, the true pairs' cylinder similarity (median 0.35) is hardly
above that of the chance pairs chosen beside them (0.34), and they share a
median of 10 true minutiae of which 6 enter the relaxation.
- A spatial spread growing with the cell's distance from the minutia (+0.1 and
  +0.2 per unit): 14.6 / 25.3 % and 17.8 / 33.3 % (chance pairs light the wider
  cells as readily as true ones); combined 5.5 / 9.7 % and 6.1 / 12.2 %.
- A direction tolerance growing with the neighbour's distance (+0.05 step per
  0.1 mm), or a wider one (`DIR_TOLERANCE` 5; 1): 11.9 / 22.8 %, 11.6 / 20.6 %,
  11.8 / 21.9 %; combined 5.3 / 10.6 %, 5.9 / 9.9 %, 5.5 / 11.1 %: noise.
- Cylinders turned to the mean direction of the minutiae within 3 or 4.5 mm
  (less direction noise than one minutia's): the true pairs' similarity unchanged.
- A smaller cylinder (radius 5 mm): 12.3 / 24.4 %; combined 5.5 / 11.0 %.
- Relaxation tolerances: distance slope 0.12 / 0.16, base 6: 12.1-12.5 / 23-25 %;
  direction tolerance 0.4 / 0.5 rad: 11.9 / 22.6-22.8 %, combined 5.4 / 10.6 % and
  5.2 / 10.3 %, but every score rises with it and the shipped thresholds no longer
  hold the easy setting's FMR (a recalibration would be needed); a radial-angle
  tolerance growing for short segments (position noise) and a direction tolerance
  growing with distance: 11.9-12.1 / 22.5-23.3 %. `RELAX_WEIGHT` 0.3 and 10
  rounds: 12.5 / 23.4 % and 13.3 / 23.4 %.
- A support normalised by min(k - 1, 15) or by max(k - 1, 35) instead of k - 1:
  17.0 / 29.8 % and 15.5 / 30.1 %; two pairs a minutia into the relaxation (more
  true pairs enter: a median of 7 instead of 6 on the weak genuine pairs): 17.5 /
  29.6 %, as pairs sharing a minutia support each other.
- A local score from a greedy largest consistent set instead of the top n_P
  (mean weight, or times its size / n_P): 12.7 / 26.0 % and 13.8 / 29.2 %; n_P
  capped at 8 or 16: 11.9 / 25.2 % and 11.9 / 20.8 %.
- Consolidation seeds spread 4 mm apart (`SEED_SPACING`, kept as a knob, off):
  combined 5.5 / 10.8 %, and with `MAX_ROTATION` 8 5.6 / 10.6 % against 5.5 /
  10.1 % without: noise.

Tried in the round of 2026-12-08 and not kept (issue 24; helpers bioD-bioG, their full
figures in those branches' commits). Unless said otherwise each was measured against main
BEFORE the pooling (`GLOBAL_POOL` 0, `FILL_REF` 30) with `/work/exp/tails.py`: the hard
FNMR at the highest of the three settings' FMR 1 % / 0.1 % thresholds, tuning seeds 11-13
then 14-16, baseline 5.6 / 10.8 % (thresholds easy / medium / hard 166 / 256, 159 / 246,
160 / 236) and 5.7 / 11.8 % (166 / 231, 161 / 228, 163 / 252); evaluation seeds 1-3
(once) 8.0 / 15.3 %. "Own": the hard setting's own DET (`/work/exp/quick.py`; baseline 5.5
/ 8.8 % and 5.6 / 11.7 %). Differences under about half a point are the noise of 1,080
genuine pairs.
- Two gains alone that the pooling took back (re-measured by the lead on top of it):
  a within-comparison rank factor (bioE, `RANK_TEMPER` 0.1): a grown pair's weight x the
  likelihood ratio true mate / chance pick of whether its cylinders are the most similar
  candidate of both its minutiae, of one, of neither (true mates 70.4 / 16.7 / 10.2 %, 2.7
  % not comparing; chance picks 22-23 / 23 / 38-43 %, 11-16 %: ratios 3.05 / 0.73 / 0.27 /
  0.2, the same on every setting, unlike the similarity's own), to the power 0.1 (a
  growing's pairs are not independent evidence). Alone 5.6 / 10.8 -> 5.0 / 10.4 % and 5.7
  / 11.8 -> 5.4 / 10.9 %, evaluation 8.0 / 15.3 -> 7.5 / 13.5 % (mostly the settings'
  tails drawing together); tempers 0.15 / 0.2 / 0.25: 4.5 / 11.3, 4.5 / 11.6, 4.8 / 11.9 %
  and 5.7 / 11.2, 5.8 / 11.5, 6.0 / 12.4 %. On top of the pooling and `FILL_REF` 25: 5.0 /
  10.6 -> 4.7 / 11.5 % and 5.4 / 10.3 -> 5.3 / 10.2 %, not a gain on both. And a fitted
  displacement field (bioF, `_field`): the mate's predicted place from a weighted affine
  fit of the made pairs' offsets, ridge-regularised (800 (0.1 mm)^2 added to the anchors'
  spread), instead of their weighted mean, to follow the skin's local rotation and shear.
  Alone 5.6 / 10.8 -> 5.4 / 9.8 % and 5.7 / 11.8 -> 5.8 / 11.3 %, evaluation 8.0 / 15.3 ->
  7.8 / 13.7 % (an impostor's best growing 6.36 -> 6.26 pairs: chance pairs lie on no
  smooth field); ridge 1600: 5.4 / 9.6, 5.6 / 11.4 %; 400: 5.2 / 10.9, 6.1 / 10.8 %; a
  rotation fit: 5.5 / 9.9, 5.8 / 11.6 %; `compare` 1.59 -> 1.75 ms. On top of the pooling:
  5.1 / 10.6 -> 5.3 / 10.9 % and 5.6 / 10.3 -> 5.6 / 10.5 %. Its ceiling: with ALL the
  true pairs nearer the seed as anchors (an oracle), 14.6 % of true mates lie outside the
  place tolerance of the mean's prediction, 12.2 % of the affine fit's.
- The candidates' rigid prefilter (bioF) loses almost nothing: of the true mates missed
  from a true seed (seed 11), 0.4 % of the shared lie inside the field's tolerance but
  outside the prefilter (8.0 % outside the place tolerance, a median 1.35 mm from the
  prediction against 1.06 mm; 7.0 % at a reference minutia without candidates; 4.6 % at
  one paired to another probe minutia; 3.7 % lose their mate to another). Widened
  (`GROW_REACH` 150, `WIDE_ANGLE` 12): 5.9 / 11.5 %, 0.04 more true pairs a true seed,
  impostors' best growings 6.36 -> 6.64 pairs; searching around the field's prediction
  (tolerance capped at the old prefilter's 1.76 mm) gives the same pairs.
- The cylinder similarity s as evidence in the consolidation (bioE). Per pair s separates
  well (the best growing's true mates a median 0.49, the impostors' picks 0.31 hard / 0.34
  easy; likelihood ratio 1 near 0.43, about 10 at 0.5-0.6), yet a grown pair's weight x
  clamp((s / 0.43)^k) made every variant worse: k 4 in [0.25, 3] 10.3 / 21.3, 12.4 / 24.2
  %; k 1 in [0.5, 1.5] 7.4 / 15.2, 8.5 / 14.4 %; k 0.5 in [0.7, 1.3] 5.9 / 13.1, 6.5 /
  13.0 %; a penalty only 6.3 / 11.2, 6.2 / 11.0 %; s over the best of its row and column
  5.4 / 10.8, 5.8 / 12.6 %. The chance level of s is the comparison's (prints of like
  ridge flow have like cylinders everywhere), so the factor lifts all of such an
  impostor's pairs at once. The best growing's own pairs as a local score: better alone
  (own 12.6 / 33.1 against 15.0 / 37.0 %), but fused with the global score, which counts
  the same pairs, nothing: blend 0.25 / 0.5 / 1, 5.9 / 11.1, 6.2 / 11.7, 6.7 / 12.9 %
  (14-16 at 0.25: 5.7 / 12.2 %); chance-corrected by the fill^4, 5.9-6.0 / 10.7-11.2 % and
  5.6-5.8 / 11.7-12.4 %.
- An adaptive chance weight from the growing's own searches (bioD; unlike the decoy
  growings above, no extra growing): each search of a reference minutia inside the
  probe's area priced by the probe's local density (a 3 mm ring beyond the tolerance,
  inside the direction window), E_adapt = 1 + 2.1 x their sum, E^(1 - b) x E_adapt^b:
  b = 1, 7.5 / 13.4 % (own 6.9 / 11.1 %) and 6.9 / 13.0 %; b = 0.5, 6.3 / 12.1 %;
  path-independent (every search priced at 1.2 mm) at b = 0.2, 6.0 / 11.8 and 5.6 / 11.7
  %. On the hard impostors log W regressed on log E and log of the searches' sum gives the
  latter -0.03: an impostor's weight comes from the selection (the best of six seeds, the
  fitted rotation), not from the searches' passive chance, which is path-dependent too (a
  lucky impostor's pairs tighten its tolerances and lower its E). It does stop the
  made-up arch-flow probes (20 / 2 of 3,000 over its own thresholds at b = 1, 176 / 13
  without), but the tests' blind cluster probes reach 253 (one of 800 over its 1 %
  threshold of 223), and `compare` 5.5 -> 7.7 ms. What is left of it: a flow guard from
  the direction window's density alone.
- The cylinder's geometry (bioG; `build_tables` rebuilds the tables from the knobs;
  `FILL_REF`, `MIN_BITS`, `MIN_VALID_CELLS` scaled with it; then own DET): `NS` 12 at the
  same 1.35 mm spread 5.3 / 10.3 % (own 5.1 / 8.0 %) but 6.0 / 12.4 %; `NS` 16 5.2 / 10.6
  % (own 5.2 / 8.1 %) but 5.9 / 12.4 %, and extract 2.55 -> 5.99 ms, compare 2.05 -> 4.60
  ms (a VERIFY over the bound); `NS` 12 with a spread growing to 1.3 mm at the rim
  (`SPREAD_GROWTH` 0.05) 5.7 / 10.8 %; `SPREAD_CELLS` 0.75 (1.1 mm; every threshold 14-39
  lower) 5.1 / 10.9 % (own 4.2 / 9.4 %) but 5.8 / 11.5 % (own 5.7 / 11.4 %), the closest
  to a gain, not re-measured with the pooling; radius 7.5 mm (`NS` 10) 6.3 / 12.2 %; `ND`
  8 / 5: 5.8 / 11.9, 5.6 / 11.2 %; `DIR_TOLERANCE` 2: 4.5 / 11.0 % but 6.2 / 11.9 %;
  tighter relaxation tolerances (`DIST_TOL_SLOPE` 0.05, `DIST_TOL_BASE` 3, `ANGLE_TOL` pi
  / 12): 5.6 / 10.6, 5.5 / 10.7, 5.5 / 10.8 %.

Bounds, as a card would have them: at most `MAX_MINUTIAE` minutiae a template
(the BIT declares it), cylinders of `NS*NS*ND` bits (twice that with
`TYPE_LAYERS`), an n x m similarity table,
at most `MAX_PAIRS` pairs in the relaxation and `RELAX_ITERATIONS` rounds: the
work is O(n*m + MAX_PAIRS^2 + GLOBAL_SEEDS * (n*m + n^2)) and the memory
O(n*m) small numbers.

Units are the compact card format's: coordinates in 0.1 mm, angles in 5.625
degree steps (ISO/IEC 19794-2:2005 §8.2). The score is an integer 0..SCORE_MAX.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from applets.biometric.iso19794 import ANGLE_STEPS, MINUTIA_SIZE

MAX_MINUTIAE = 60
SCORE_MAX = 10000

# -- Parameters (0.1 mm units, angle steps of 5.625 degrees) ------------------------------
RADIUS = 60  # cylinder radius: 6 mm
NS = 8  # spatial cells along a side
ND = 6  # direction layers
SPREAD_CELLS = 0.9  # a neighbour lights the cells whose centre is this close (in cells)
SPREAD_GROWTH = 0.0  # ... plus this per unit of the cell centre's distance from the minutia
DIR_TOLERANCE = 3  # steps (16.9 degrees) beyond a layer's own half-width
HULL_MARGIN = 15  # 1.5 mm
MIN_VALID_CELLS = 20  # spatial cells valid in both cylinders, else no similarity
MIN_BITS = 6  # set bits in a cylinder (on the common cells), else no similarity
MAX_ROTATION = 8  # steps: 45 degrees between a reference and a probe minutia (see 2.)
MAX_PAIRS = 36
RELAX_ITERATIONS = 5
RELAX_WEIGHT = 0.5
MIN_NP, MAX_NP = 4, 12
SEED_SPACING = 0.0  # the pairs handed to the consolidation this far apart (0: the top n_P)
TYPE_LAYERS = 0  # 1: endings and bifurcations in separate direction layers (see 1.)
# Consolidation (`_global`, `_pair_up`): region growing from a few seed pairs.
GLOBAL_SEEDS = 6  # seed pairs tried, the strongest after relaxation
GLOBAL_POOL = 1.0  # global: (1 - this) x the best growing's + this x their mean (0: before)
GLOBAL_ANGLE = 7  # steps (39.4 degrees) from the direction the nearby pairs predict
WIDE_ANGLE = 7  # steps: the candidates' prefilter, before the local turn is known
GROW_DIST = 8.0  # 0.8 mm: the place tolerance next to a made pair ...
GROW_SLOPE = 0.12  # ... growing by this per unit of distance to the nearest made pair
GROW_REACH = 80.0  # the prefilter allows for a nearest pair this far (8 mm)
FIELD_SOFT = 400.0  # (0.1 mm)^2: a pair's residual weighs 1 / (d^2 + this)
PLACE_WEIGHT = 0.3  # a pair at the edge of the tolerances weighs this much less
TYPE_MISMATCH = 0.2  # a pair of an ending and a bifurcation weighs this much
GLOBAL_MIN_OVERLAP = 15  # minutiae: smaller common areas count as this large
# The global score's null model (`_global_score`).
CHANCE_AREA = 145.0  # (0.1 mm)^2: expected chance weight per minutia per unit density
MIN_DENSITY = 0.001  # minutiae per (0.1 mm)^2 (10 per cm^2): sparser counts as this dense
SIGNIFICANCE_MAX = 8.0  # -log10 P of a global score of 1
DENSITY_EXP = 0.5  # E grows as the densities' geometric mean to this power (1: the old E)
DENSITY_REF = 0.0013  # minutiae per (0.1 mm)^2 (13 per cm^2, the generator's median)
# The local score's chance correction (`_fill_factor`, `_chance_corrected`).
FILL_EXP = 2.0  # the chance level of relaxed weights grows as the cylinders' fill to this power
FILL_REF = 25.0  # set bits per cylinder (was 30; `_fill_factor`): fuller ones scaled down
LOCAL_WEIGHT = 0.5  # the score is local^w x global^(1-w)
# Pair compatibility: distance tolerance grows with the distance (elastic distortion).
DIST_TOL_BASE = 4.0
DIST_TOL_SLOPE = 0.08
ANGLE_TOL = math.pi / 10

_TWO_PI = 2 * math.pi
_STEP = _TWO_PI / ANGLE_STEPS
_LN10 = math.log(10.0)
_QUANT = 2.0  # resolution of the spatial lookup table


def _cell_centres(ns: int, cell: float) -> tuple[tuple[float, float], ...]:
    half = ns / 2
    return tuple(
        ((i - half + 0.5) * cell, (j - half + 0.5) * cell) for j in range(ns) for i in range(ns)
    )


def _spatial_table(
    centres: tuple[tuple[float, float], ...], disc_cells: tuple[int, ...], spread: float
) -> tuple[tuple[int, ...], ...]:
    """Spatial bits lit by a neighbour at each quantised offset (u, v) in the minutia's frame.

    A cell whose centre lies r from the minutia is lit by a neighbour within
    `spread` + `SPREAD_GROWTH` x r of that centre (0 growth: one spread everywhere).
    """
    reach = RADIUS + spread + SPREAD_GROWTH * RADIUS
    n = int(math.ceil(reach / _QUANT))
    lim = {k: (spread + SPREAD_GROWTH * math.hypot(*centres[k])) ** 2 for k in disc_cells}
    rows = []
    for iv in range(-n, n + 1):
        row = []
        v = iv * _QUANT
        for iu in range(-n, n + 1):
            u = iu * _QUANT
            mask = 0
            for k in disc_cells:
                cx, cy = centres[k]
                if (cx - u) ** 2 + (cy - v) ** 2 <= lim[k]:
                    mask |= 1 << k
            row.append(mask)
        rows.append(tuple(row))
    return tuple(rows)


def _layer_table(cells: int) -> tuple[int, ...]:
    """For each relative direction (in angle steps), a multiplier copying spatial bits into
    the direction layers it falls in (with the tolerance)."""
    per = ANGLE_STEPS / ND
    out = []
    for d in range(ANGLE_STEPS):
        mult = 0
        for k in range(ND):
            centre = (k + 0.5) * per
            diff = abs((d - centre + ANGLE_STEPS / 2) % ANGLE_STEPS - ANGLE_STEPS / 2)
            if diff <= per / 2 + DIR_TOLERANCE:
                mult |= 1 << (cells * k)
        out.append(mult)
    return tuple(out)


def build_tables() -> None:
    """(Re)compute the cylinder's lookup tables from `RADIUS`, `NS`, `ND`, `SPREAD_CELLS`,
    `SPREAD_GROWTH` and `DIR_TOLERANCE` (at import; the experiments call it again after
    changing them)."""
    global CELL, SPREAD, _CELLS, _LAYER_REPEAT, _CENTRES, _DISC, _DISC_CELLS, _DISC_CENTRES
    global _REACH, _SPATIAL, _SPATIAL_OFFSET, _LAYERS
    CELL = 2 * RADIUS / NS
    SPREAD = SPREAD_CELLS * CELL
    _CELLS = NS * NS
    # the validity mask copied into every layer of both type blocks (the second is empty
    # when TYPE_LAYERS is 0)
    _LAYER_REPEAT = sum(1 << (_CELLS * k) for k in range(2 * ND))
    _CENTRES = _cell_centres(NS, CELL)
    # cells inside the cylinder's disc
    _DISC = sum(
        1 << k for k, (cx, cy) in enumerate(_CENTRES) if cx * cx + cy * cy <= RADIUS * RADIUS
    )
    _DISC_CELLS = tuple(k for k in range(_CELLS) if _DISC >> k & 1)
    # (bit, centre x, centre y) of each cell inside the disc
    _DISC_CENTRES = tuple((1 << k, *_CENTRES[k]) for k in _DISC_CELLS)
    _REACH = RADIUS + SPREAD + SPREAD_GROWTH * RADIUS
    _SPATIAL = _spatial_table(_CENTRES, _DISC_CELLS, SPREAD)
    _SPATIAL_OFFSET = int(math.ceil(_REACH / _QUANT))
    _LAYERS = _layer_table(_CELLS)


CELL = SPREAD = _REACH = 0.0
_CELLS = _LAYER_REPEAT = _DISC = _SPATIAL_OFFSET = 0
_CENTRES: tuple[tuple[float, float], ...] = ()
_DISC_CELLS: tuple[int, ...] = ()
_DISC_CENTRES: tuple[tuple[int, float, float], ...] = ()
_SPATIAL: tuple[tuple[int, ...], ...] = ()
_LAYERS: tuple[int, ...] = ()
build_tables()


@dataclass(frozen=True, slots=True)
class Features:
    """What the matcher derives from a template: positions, directions and cylinders.

    Derived from, and as secret as, the template: it never leaves the card.
    """

    xs: tuple[float, ...]
    ys: tuple[float, ...]  # Y grows upwards here (the format's Y is negated)
    angles: tuple[int, ...]  # steps of 5.625 degrees
    cylinders: tuple[int, ...]
    valid: tuple[int, ...]  # spatial validity mask of each cylinder
    neighbours: tuple[int, ...]
    region: _Region
    kinds: tuple[int, ...] = ()  # the type bits (ISO/IEC 19794-2 §6.4.1)

    def __len__(self) -> int:
        return len(self.xs)

    def __repr__(self) -> str:  # never the minutiae
        return f"<Features of {len(self.xs)} minutiae>"


def extract(template: bytes) -> Features:
    """Build the local structures of a template (compact-card minutiae bytes).

    Only the first MAX_MINUTIAE minutiae are used; the applet refuses longer
    templates before it gets here.
    """
    n = min(len(template) // MINUTIA_SIZE, MAX_MINUTIAE)
    xs = tuple(float(template[3 * i]) for i in range(n))
    ys = tuple(-float(template[3 * i + 1]) for i in range(n))
    angles = tuple(template[3 * i + 2] & 0x3F for i in range(n))
    cos_t = [math.cos(a * _STEP) for a in angles]
    sin_t = [math.sin(a * _STEP) for a in angles]
    kinds = tuple(template[3 * i + 2] >> 6 for i in range(n))
    # With TYPE_LAYERS, an ending lights the first block of ND layers, a bifurcation
    # the second, a minutia of unknown or other type both.
    block = 1 << (_CELLS * ND)
    if TYPE_LAYERS:
        tmult = [1 if k == 1 else block if k == 2 else 1 + block for k in kinds]
    else:
        tmult = [1] * n
    region = _Region(xs, ys)
    y0, spans, row = region.y0, region.spans, _Region.ROW
    rows = len(spans)
    reach2 = _REACH * _REACH
    off = _SPATIAL_OFFSET
    size = 2 * off + 1
    q = _QUANT
    cylinders = []
    valid = []
    neighbours = []
    for i in range(n):
        xi, yi, ci, si, ai = xs[i], ys[i], cos_t[i], sin_t[i], angles[i]
        cyl = 0
        count = 0
        for j in range(n):
            if j == i:
                continue
            dx = xs[j] - xi
            dy = ys[j] - yi
            if dx * dx + dy * dy > reach2:
                continue
            u = dx * ci + dy * si
            v = -dx * si + dy * ci
            iu = int(round(u / q)) + off
            iv = int(round(v / q)) + off
            if 0 <= iu < size and 0 <= iv < size:
                spatial = _SPATIAL[iv][iu]
                if spatial:
                    cyl |= spatial * _LAYERS[(angles[j] - ai) % ANGLE_STEPS] * tmult[j]
                    count += 1
        # `region.contains` for each cell centre, inlined (the same arithmetic): a
        # VERIFY extracts two templates, and these are most of the work.
        mask = 0
        for bit, cx, cy in _DISC_CENTRES:
            y = yi + cx * si + cy * ci
            if y < y0:
                continue
            r = int((y - y0) / row + 0.5)
            if r >= rows:
                continue
            lo, hi = spans[r]
            if lo <= xi + cx * ci - cy * si <= hi:
                mask |= bit
        cylinders.append(cyl)
        valid.append(mask)
        neighbours.append(count)
    return Features(
        xs, ys, angles, tuple(cylinders), tuple(valid), tuple(neighbours), region, kinds
    )


class _Region:
    """The area a template covers: its convex hull widened by HULL_MARGIN, as row spans.

    Row r stands for the band of height ROW around y0 + r x ROW (`contains` rounds to
    the nearest row). A hull is sampled on the rows' lines; one that no line crosses
    (a point, a horizontal segment, any hull thinner than a row between two lines) is
    put on the row whose band holds its middle, so it still gets the margin around it
    like any other shape instead of an empty region.
    """

    __slots__ = ("y0", "spans", "area")

    ROW = 4.0

    def __init__(self, xs: tuple[float, ...], ys: tuple[float, ...]) -> None:
        self.y0 = 0.0
        self.spans: tuple[tuple[float, float], ...] = ()
        self.area = 0.0  # (0.1 mm)^2, the rows' spans times the row height
        hull = _convex_hull(list(zip(xs, ys, strict=True)))
        if not hull:
            return  # no minutiae: no area
        m = HULL_MARGIN
        ymin = min(p[1] for p in hull) - m
        ymax = max(p[1] for p in hull) + m
        rows = int((ymax - ymin) / self.ROW) + 1
        raw: list[tuple[float, float] | None] = []
        edges = list(zip(hull, hull[1:] + hull[:1], strict=True))
        for r in range(rows):
            y = ymin + r * self.ROW
            lo, hi = math.inf, -math.inf
            for (x1, y1), (x2, y2) in edges:
                if (y1 <= y <= y2) or (y2 <= y <= y1):
                    if y1 == y2:
                        lo, hi = min(lo, x1, x2), max(hi, x1, x2)
                    else:
                        x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
                        lo, hi = min(lo, x), max(hi, x)
            raw.append((lo, hi) if lo <= hi else None)
        if not any(raw):  # thinner than a row and between two lines: onto the nearest row
            middle = (min(p[1] for p in hull) + max(p[1] for p in hull)) / 2
            r = min(rows - 1, int((middle - ymin) / self.ROW + 0.5))
            raw[r] = (min(p[0] for p in hull), max(p[0] for p in hull))
        # Widen: a row takes the union of the rows within the margin, then the margin in x.
        k = int(m / self.ROW)
        spans = []
        for r in range(rows):
            lo, hi = math.inf, -math.inf
            for rr in range(max(0, r - k), min(rows, r + k + 1)):
                span = raw[rr]
                if span is not None:
                    lo, hi = min(lo, span[0]), max(hi, span[1])
            spans.append((lo - m, hi + m) if lo <= hi else (math.inf, -math.inf))
        self.y0 = ymin
        self.spans = tuple(spans)
        self.area = self.ROW * sum(hi - lo for lo, hi in spans if lo <= hi)

    def contains(self, x: float, y: float) -> bool:
        r = int((y - self.y0) / self.ROW + 0.5)
        if not 0 <= r < len(self.spans) or y < self.y0:
            return False
        lo, hi = self.spans[r]
        return lo <= x <= hi


def _convex_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Andrew's monotone chain; the hull anticlockwise, without repeated points."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def _angle_diff(a: float, b: float) -> float:
    """a - b folded into (-pi, pi]."""
    d = (a - b) % _TWO_PI
    return d - _TWO_PI if d > math.pi else d


@dataclass
class Trace:
    """What `compare` went through, for the diagnostic (`host.bio.diagnose`): never on a card.

    Pairs are (reference index, probe index).
    """

    candidates: list[tuple[float, int, int]] = field(default_factory=list)  # sorted, best first
    chosen: list[tuple[float, int, int]] = field(default_factory=list)  # into the relaxation
    relaxed: list[float] = field(default_factory=list)  # relaxed weight of each chosen pair
    seeds: list[tuple[int, int]] = field(default_factory=list)  # consolidation seeds tried
    paired: list[tuple[int, int]] = field(default_factory=list)  # the best seed's pairs
    local: float = 0.0
    glob: float = 0.0


def compare(reference: Features, probe: Features, trace: Trace | None = None) -> int:
    """The similarity of two templates' features, 0 (different) to SCORE_MAX.

    Symmetric in its arguments up to floating-point ties; deterministic. `trace`, when
    given, is filled with the intermediate stages (host-side diagnostics only).
    """
    n, m = len(reference), len(probe)
    if n < 2 or m < 2:
        return 0
    # 2. Local similarities.
    pairs = _local_pairs(reference, probe)
    if not pairs:
        return 0
    # 3. One-to-one selection of the best pairs.
    pairs.sort(reverse=True)
    if trace is not None:
        trace.candidates = pairs
    chosen = _choose(pairs, min(MAX_PAIRS, n, m))
    k = len(chosen)
    if k < 2:
        return 0
    # Relaxation by pair compatibility.
    lam0 = [c[0] for c in chosen]
    lam = _relax(reference, probe, chosen)
    # The n_P most efficient pairs (relaxed weight kept relative to the initial one).
    order = sorted(range(k), key=lambda p: lam[p] / lam0[p], reverse=True)
    # 4. Global consolidation: several local alignments, every minutia paired under each.
    seeds = _seeds(reference, chosen, lam, order)
    glob = _global(reference, probe, [chosen[p] for p in seeds], [lam[p] for p in seeds], trace)
    local = _local_score(lam, order, _n_pairs(min(n, m)))
    local = _chance_corrected(local, _fill_factor(reference, probe))
    if trace is not None:
        trace.chosen, trace.relaxed, trace.local, trace.glob = chosen, lam, local, glob
    # Both must agree: local structures alone are fooled by similar ridge flow, the
    # global pairing alone by a lucky alignment of a few minutiae.
    if local <= 0.0 or glob <= 0.0:
        return 0
    return _fuse(local, glob)


def _fuse(local: float, glob: float) -> int:
    """The score 0..SCORE_MAX from the local (0..1) and the global (0..1) ones, both > 0:
    local^LOCAL_WEIGHT x global^(1 - LOCAL_WEIGHT)."""
    score = local**LOCAL_WEIGHT * glob ** (1.0 - LOCAL_WEIGHT)
    return max(0, min(SCORE_MAX, int(round(score * SCORE_MAX))))


def _local_pairs(reference: Features, probe: Features) -> list[tuple[float, int, int]]:
    """(similarity, reference index, probe index) of every pair whose cylinders compare.

    A pair compares when the directions differ by at most `MAX_ROTATION` and the two
    cylinders share `MIN_VALID_CELLS` valid cells holding `MIN_BITS` set bits each.
    """
    n, m = len(reference), len(probe)
    rot = MAX_ROTATION
    steps = ANGLE_STEPS
    pairs: list[tuple[float, int, int]] = []
    ra, pa = reference.angles, probe.angles
    rc, pc = reference.cylinders, probe.cylinders
    rv, pv = reference.valid, probe.valid
    repeat = _LAYER_REPEAT
    for i in range(n):
        ai, ci, vi = ra[i], rc[i], rv[i]
        if not ci:
            continue
        for j in range(m):
            d = (ai - pa[j]) % steps
            if rot < d < steps - rot:
                continue
            cj = pc[j]
            if not cj:
                continue
            common = vi & pv[j]
            if common.bit_count() < MIN_VALID_CELLS:
                continue
            full = common * repeat
            a = ci & full
            b = cj & full
            na = a.bit_count()
            nb = b.bit_count()
            if na < MIN_BITS or nb < MIN_BITS:
                continue
            s = 1.0 - (a ^ b).bit_count() / (na + nb)
            if s > 0.0:
                pairs.append((s, i, j))
    return pairs


def _choose(pairs: list[tuple[float, int, int]], limit: int) -> list[tuple[float, int, int]]:
    """The best `limit` pairs, one-to-one, greedily from the sorted `pairs`."""
    used_r: set[int] = set()
    used_p: set[int] = set()
    chosen: list[tuple[float, int, int]] = []
    for s, i, j in pairs:
        if i in used_r or j in used_p:
            continue
        used_r.add(i)
        used_p.add(j)
        chosen.append((s, i, j))
        if len(chosen) == limit:
            break
    return chosen


def _relax(
    reference: Features, probe: Features, chosen: list[tuple[float, int, int]]
) -> list[float]:
    """The relaxed weight of each chosen pair.

    Each round a pair's weight moves towards the mean of the others' weights times
    their compatibility with it (`RELAX_WEIGHT` of its own kept), never above its
    initial similarity.
    """
    k = len(chosen)
    rx, ry, px, py = reference.xs, reference.ys, probe.xs, probe.ys
    ra, pa = reference.angles, probe.angles
    rho = [[0.0] * k for _ in range(k)]
    for p in range(k):
        _, i1, j1 = chosen[p]
        for q in range(p + 1, k):
            _, i2, j2 = chosen[q]
            c = _compatibility(
                rx[i1], ry[i1], ra[i1] * _STEP, rx[i2], ry[i2], ra[i2] * _STEP,
                px[j1], py[j1], pa[j1] * _STEP, px[j2], py[j2], pa[j2] * _STEP,
            )  # fmt: skip
            rho[p][q] = rho[q][p] = c
    lam0 = [c[0] for c in chosen]
    lam = lam0[:]
    w = RELAX_WEIGHT
    norm = k - 1
    for _ in range(RELAX_ITERATIONS):
        lam = [
            min(lam0[p], w * lam[p] + (1 - w) * sum(rho[p][q] * lam[q] for q in range(k)) / norm)
            for p in range(k)
        ]
    return lam


def _seeds(
    reference: Features, chosen: list[tuple[float, int, int]], lam: list[float], order: list[int]
) -> list[int]:
    """The chosen pairs handed to the consolidation (its seeds and rotation estimate).

    The `MAX_NP` most efficient pairs; the consolidation grows from the strongest of
    them (`GLOBAL_SEEDS`). With `SEED_SPACING` > 0 instead: up to `MAX_NP` pairs with
    a positive relaxed weight, strongest first, each at least that far from those
    picked before it on the reference, then the rest in order of weight. The idea:
    the top pairs tend to sit in one patch (their cylinders overlap, so their
    similarities rise and fall together), and when that patch lies in the sheared
    brake band every seed starts from the same wrong local rotation. Measured at 4 mm
    (hard setting, tuning seeds 11-13), it changed the FNMR by noise only (module
    docstring), so it is off.
    """
    if SEED_SPACING <= 0:
        return order[:MAX_NP]
    xs, ys = reference.xs, reference.ys
    byw = sorted(range(len(chosen)), key=lambda p: lam[p], reverse=True)
    picked: list[int] = []
    rest: list[int] = []
    sp2 = SEED_SPACING * SEED_SPACING
    for p in byw:
        i = chosen[p][1]
        if lam[p] > 0.0 and all(
            (xs[i] - xs[chosen[q][1]]) ** 2 + (ys[i] - ys[chosen[q][1]]) ** 2 >= sp2 for q in picked
        ):
            picked.append(p)
            if len(picked) == MAX_NP:
                break
        else:
            rest.append(p)
    return picked + rest[: MAX_NP - len(picked)]


def _local_score(lam: list[float], order: list[int], n_p: int) -> float:
    """The mean relaxed weight of the `n_p` most efficient pairs.

    Fewer surviving pairs than n_P count as zeros: a few lucky pairs are not a match.
    """
    return sum(lam[p] for p in order[:n_p]) / n_p


def _fill_factor(reference: Features, probe: Features) -> float:
    """How much fuller than `FILL_REF` the two templates' cylinders are, to `FILL_EXP`: >= 1.

    The fill is the mean number of set bits of a template's cylinders (the geometric mean
    of the two templates'), floored at `FILL_REF`, so that no template is scaled up: a
    sparse probe (few neighbours a minutia) gains nothing from it.

    `FILL_REF` 25 (it was 30, set with the best growing's global score): the floor at 30
    bound on 0.04 % of easy impostor pairs, 4.5 / 6.0 % of medium / hard ones and 11 % of
    hard genuine pairs (tuning seeds 11-13; fills 25-30); at 25 those are corrected too, and
    for the rest the change is nearly a common factor (30 / 25)^2 = 1.44, which moves the
    scores' order only through the exponent 1 - local of `_chance_corrected` (high, genuine,
    local scores are divided a little less than low, chance, ones). With the growings pooled
    (`GLOBAL_POOL` 1) the hard FNMR at the highest setting's FMR 1 % / 0.1 % thresholds went
    5.09 / 10.65 -> 5.00 / 10.56 % (tuning seeds 11-13) and 5.56 / 10.28 -> 5.37 / 10.28 %
    (14-16), the easy setting's 1 % threshold over the hard one's from 98 / 87 to 82 / 73
    and from 94 / 89 to 78 / 75: 1-2 genuine pairs in 1,080 (noise-level), but the only
    neighbour of the chance constants that helped on both seed sets (module docstring,
    "Re-tuned with the growings pooled"). `FILL_REF` 22 / 27.5 / 30 / 35: 5.0 / 10.6, 5.1 /
    10.7, 5.1 / 10.7, 5.7 / 11.2 % on 11-13.
    """
    if FILL_EXP == 0.0:
        return 1.0
    fr = sum(c.bit_count() for c in reference.cylinders) / max(1, len(reference))
    fp = sum(c.bit_count() for c in probe.cylinders) / max(1, len(probe))
    fill = max(math.sqrt(fr * fp), FILL_REF)
    return float((fill / FILL_REF) ** FILL_EXP)


def _chance_corrected(local: float, factor: float) -> float:
    """The local score over the chance level of its templates' fill: local / factor^(1 - local).

    Why (issue 24, the impostor tails of the generator's settings): two unrelated
    cylinders agree on about as many bits as they hold (the Dice coefficient of two
    independent bit sets is about their fill), and a relaxed weight is a pair's
    similarity times the mean similarity of the pairs supporting it, so the chance level
    of the local score grows as the fill SQUARED (`FILL_EXP` = 2). The easy setting (no
    missed minutiae, no noise) has fuller cylinders (a mean of 43.6 set bits against 38.1
    on the hard setting; 14.4 neighbours a minutia against 12.8), and its impostors' local
    scores were higher AT EVERY TEMPLATE SIZE (99 % quantile 0.026-0.031 against
    0.020-0.023 in bins of min(n, m) from 20 to 40, tuning seeds 11-13): so the easy
    setting set the thresholds. Divided by fill^2 the local tails coincide (easy / hard
    99.9 % quantile 0.036 / 0.035 at fill^1.5, 0.036 / 0.042 at fill^2). The exponent
    1 - local leaves a perfect local score (every pair fully similar and supported: no
    chance part) at 1, so a template against itself still scores SCORE_MAX; impostor
    and genuine local scores are under 0.2, where the factor applies nearly whole.
    """
    if factor <= 1.0 or local <= 0.0:
        return local
    return local / factor ** (1.0 - min(local, 1.0))


def _global(
    reference: Features,
    probe: Features,
    pairs: list[tuple[float, int, int]],
    weights: list[float],
    trace: Trace | None = None,
) -> float:
    """The consolidations grown from a few seeds (see `_pair_up`), pooled by `_pooled`, 0..1.

    No single rigid transform holds over a distorted print, so each of the
    `GLOBAL_SEEDS` strongest relaxed pairs seeds its own: the probe is turned by
    the mean rotation of the pairs compatible with the seed (weighted by relaxed
    weight x compatibility) and shifted so the seed's minutiae coincide.
    """
    k = len(pairs)
    if k == 0:
        return 0.0
    ra, pa = reference.angles, probe.angles
    order = sorted(range(k), key=lambda p: weights[p], reverse=True)[:GLOBAL_SEEDS]
    best = total = 0.0
    for p in order:
        _, i0, j0 = pairs[p]
        cs = sn = 0.0
        for (_, i, j), w in zip(pairs, weights, strict=True):
            c = 1.0 if i == i0 else _compat_pairs(reference, probe, i0, j0, i, j)
            if c > 0.0:
                d = (ra[i] - pa[j]) * _STEP
                cs += w * c * math.cos(d)
                sn += w * c * math.sin(d)
        rot = math.atan2(sn, cs)
        g, paired = _pair_up(reference, probe, i0, j0, rot)
        if trace is not None:
            trace.seeds.append((i0, j0))
            if g > best or not trace.paired:
                trace.paired = paired
        best = max(best, g)
        total += g
    return _pooled(best, total)


def _pooled(best: float, total: float) -> float:
    """The global score from the growings' significances: their best and their sum, 0..1.

    (1 - `GLOBAL_POOL`) x best + `GLOBAL_POOL` x total / `GLOBAL_SEEDS`: at 1 the mean
    significance of the growings, at 0 the best one's (the score before). Why the mean
    (module docstring, "The growings pooled", with the figures): a genuine comparison's
    seeds are nearly all true pairs and grow into the same alignment, an impostor's best
    growing is usually one lucky alignment among growings that find nothing, and the max
    kept it whole. The mean never exceeds the best. It is over `GLOBAL_SEEDS`, not over
    the growings tried: a template too small to offer that many seeds counts the missing
    growings as finding nothing (k / `GLOBAL_SEEDS` of its mean for k seeds), so it never
    gains from being small. A growing at the clip (significance 1, P <= 1e-8, which no
    impostor of the tuning seeds' 54,000 reached; `_global_score`) is no lucky alignment:
    it decides alone, so a template against itself scores SCORE_MAX even when its other
    seeds' growings stop short of the clip (a review found a 25-minutia template of the
    hard setting at 9670: one growing at 1.0, five at 0.92).
    """
    if GLOBAL_POOL == 0.0 or best >= 1.0:
        return min(1.0, best)
    return min(1.0, (1.0 - GLOBAL_POOL) * best + GLOBAL_POOL * total / GLOBAL_SEEDS)


def _compat_pairs(
    reference: Features, probe: Features, i1: int, j1: int, i2: int, j2: int
) -> float:
    return _compatibility(
        reference.xs[i1], reference.ys[i1], reference.angles[i1] * _STEP,
        reference.xs[i2], reference.ys[i2], reference.angles[i2] * _STEP,
        probe.xs[j1], probe.ys[j1], probe.angles[j1] * _STEP,
        probe.xs[j2], probe.ys[j2], probe.angles[j2] * _STEP,
    )  # fmt: skip


def _pair_up(
    reference: Features, probe: Features, i0: int, j0: int, rot: float
) -> tuple[float, list[tuple[int, int]]]:
    """Pair the minutiae outwards from the seed pair (i0, j0), the probe turned by `rot`.

    Region growing under a smooth displacement field: reference minutiae are
    visited in order of distance from the seed; each looks for its mate where the
    pairs already made predict it (their residual offsets and turns, weighted by
    1 / (d^2 + FIELD_SOFT)), within `GROW_DIST` + `GROW_SLOPE` x the distance to
    the nearest made pair and within `GLOBAL_ANGLE` of the predicted direction.
    So the tolerance is tight next to known pairs and the alignment bends with
    the skin instead of holding one rigid transform over the whole print.

    Each pair weighs 1 less up to `PLACE_WEIGHT` for its distance and direction
    error, times `TYPE_MISMATCH` when both types are known and differ. The result
    is `_global_score` of the summed weight W and of r, p, the reference and probe
    minutiae inside the other's area: how far W lies above chance.
    """
    c, s = math.cos(rot), math.sin(rot)
    rx, ry, px, py = reference.xs, reference.ys, probe.xs, probe.ys
    ra, pa = reference.angles, probe.angles
    ax, ay = rx[i0], ry[i0]
    bx, by = px[j0], py[j0]
    tx = ax - (c * bx - s * by)
    ty = ay - (s * bx + c * by)
    rot_steps = rot / _STEP
    n, m = len(reference), len(probe)
    qx = [c * px[j] - s * py[j] + tx for j in range(m)]
    qy = [s * px[j] + c * py[j] + ty for j in range(m)]
    qa = [(pa[j] + rot_steps) % ANGLE_STEPS for j in range(m)]
    half = ANGLE_STEPS / 2
    # Candidates: probe minutiae within the widest tolerance and the angle tolerance.
    wide = GROW_DIST + GROW_SLOPE * GROW_REACH
    wide2 = wide * wide
    cands: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        xi, yi, ai = rx[i], ry[i], ra[i]
        row = cands[i]
        for j in range(m):
            dx = qx[j] - xi
            if -wide <= dx <= wide:
                dy = qy[j] - yi
                if dx * dx + dy * dy <= wide2:
                    if abs((qa[j] - ai + half) % ANGLE_STEPS - half) <= WIDE_ANGLE:
                        row.append(j)
    # Grow from the seed outwards: each reference minutia looks for its mate where the
    # nearest pair already made predicts it (that pair's own residual offset), within a
    # tolerance growing with the distance to that pair. Distortion is smooth, so nearby
    # pairs move together even when the whole print does not move rigidly.
    order = sorted(range(n), key=lambda i: (rx[i] - ax) ** 2 + (ry[i] - ay) ** 2)
    # position, residual offset (reference - aligned probe) and residual turn of each pair
    anchors = [(ax, ay, 0.0, 0.0, _fold(ra[i0] - qa[j0]))]
    paired = [(i0, j0)]
    uj = {j0}
    matched = 1
    weight = 1.0
    rk, pk = reference.kinds, probe.kinds
    for i in order:
        if i == i0 or not cands[i]:
            continue
        xi, yi = rx[i], ry[i]
        best_d2 = math.inf
        # The expected offset there: the pairs' residuals, weighted by closeness (a
        # smooth displacement field, which also averages their own position noise).
        sw = sx = sy = sa = 0.0
        for bx_, by_, ox_, oy_, oa_ in anchors:
            d2 = (bx_ - xi) ** 2 + (by_ - yi) ** 2
            if d2 < best_d2:
                best_d2 = d2
            wgt = 1.0 / (d2 + FIELD_SOFT)
            sw += wgt
            sx += wgt * ox_
            sy += wgt * oy_
            sa += wgt * oa_
        ox, oy, oa = sx / sw, sy / sw, sa / sw
        tol = GROW_DIST + GROW_SLOPE * math.sqrt(best_d2)
        tol2 = tol * tol
        pick = -1
        limit2 = tol2
        want = ra[i] - oa  # the direction the nearby pairs predict
        for j in cands[i]:
            if j in uj or abs(_fold(qa[j] - want)) > GLOBAL_ANGLE:
                continue
            dx = qx[j] + ox - xi
            dy = qy[j] + oy - yi
            d2 = dx * dx + dy * dy
            if d2 <= limit2:
                limit2, pick = d2, j
        if pick >= 0:
            uj.add(pick)
            paired.append((i, pick))
            matched += 1
            anchors.append((xi, yi, xi - qx[pick], yi - qy[pick], _fold(ra[i] - qa[pick])))

            # A pair's weight: closer in place and direction, and of the same type, is
            # likelier a true mate than a chance neighbour inside the tolerance.
            da = abs(_fold(qa[pick] - want))
            wgt = (1.0 - PLACE_WEIGHT * math.sqrt(limit2 / tol2)) * (
                1.0 - PLACE_WEIGHT * da / (GLOBAL_ANGLE + 1)
            )
            ki, kj = rk[i], pk[pick] if pk else 0
            if rk and ki and kj and ki != kj:
                wgt *= TYPE_MISMATCH
            weight += wgt
    # Overlap: reference minutiae inside the probe's area, probe minutiae inside the reference's.
    preg, rreg = probe.region, reference.region
    ov_r = 0
    for i in range(n):
        x, y = rx[i] - tx, ry[i] - ty
        if preg.contains(c * x + s * y, -s * x + c * y):
            ov_r += 1
    ov_p = sum(1 for j in range(m) if rreg.contains(qx[j], qy[j]))
    return _global_score(weight, matched, ov_r, ov_p, reference, probe), paired


def _global_score(
    weight: float, matched: int, ov_r: int, ov_p: int, reference: Features, probe: Features
) -> float:
    """The consolidation's score, 0..1: how far its summed pair weight is above chance.

    Under the impostor hypothesis the pairs a consolidation makes are chance
    neighbours, and their number grows with the minutiae in the common area and with
    the DENSITY of the other template there (a reference minutia meets a probe minutia
    inside the tolerance area with a probability proportional to the probe's
    density), not with the overlap alone: so W^2 / (r x p), the score before, let the
    easy setting's impostors (no missed minutiae: denser templates) score highest and
    set the thresholds, which then sat far under their FMR on the hard setting. The
    null model here: the expected chance weight is

        E = CHANCE_AREA x sqrt(r x p) x sqrt(rho_r x rho_p)

    (the density term now `_density_term`: grown as the density to `DENSITY_EXP`)

    with r, p the reference and probe minutiae inside the other's area (at least
    `GLOBAL_MIN_OVERLAP`, and at least the pairs made) and rho_r, rho_p each
    template's minutiae per unit of its own area (at least `MIN_DENSITY`). The score
    is the significance of W over E: -log10 of the Chernoff bound of the Poisson tail,
    P(X >= W) <= exp(-(W ln(W/E) - W + E)), over `SIGNIFICANCE_MAX` (0 when W <= E).
    `SIGNIFICANCE_MAX` = 8 (P = 1e-8): no impostor of the 54,000 below reached 1.0 (their
    99.9 % quantile is 0.4 on every setting), so the clip only merges certain matches,
    and a template against itself (30 minutiae or more) reaches it: SCORE_MAX.
    `CHANCE_AREA` is measured (tuning seeds 11-13, 18,000 impostors a setting): the
    best seed's W / (sqrt(r p) rho) is 1.41, 1.47 and 1.46 mm^2 on the easy, medium and
    hard settings, one constant for all three, which W^2 / (r p) is not.

    Guards against crafted probes: a probe sparser than any finger would make E small
    and every chance pair significant, so densities count as at least `MIN_DENSITY`
    (10 per cm^2, under the 5 % quantile of the generator's templates, 10.5: for real
    templates it changes nothing); a dense probe (minutiae packed in a small area)
    only raises E, and lowers its score.
    """
    ov_r = max(ov_r, GLOBAL_MIN_OVERLAP, matched)
    ov_p = max(ov_p, GLOBAL_MIN_OVERLAP, matched)
    area_r, area_p = reference.region.area, probe.region.area
    if area_r <= 0.0 or area_p <= 0.0:
        return 0.0
    rho = math.sqrt(
        max(len(reference) / area_r, MIN_DENSITY) * max(len(probe) / area_p, MIN_DENSITY)
    )
    expected = CHANCE_AREA * math.sqrt(ov_r * ov_p) * _density_term(rho)
    if weight <= expected:
        return 0.0
    bits = (weight * math.log(weight / expected) - weight + expected) / _LN10
    return min(1.0, bits / SIGNIFICANCE_MAX)


def _density_term(rho: float) -> float:
    """The chance weight's growth with the templates' density: DENSITY_REF x (rho / ref)^x.

    x = `DENSITY_EXP`; at 1 it is rho itself (the argument above: a chance neighbour is
    met in proportion to the other template's density). Measured on the impostors of
    tuning seeds 11-13 (36,000, the three settings), the best seed's W grows as
    rho^0.11 x sqrt(r p)^0.77 (least squares on the logarithms): far less with the
    density than the argument says, as the growing pairs at most one mate a minutia
    within a tolerance and the templates' densities vary less than their overlaps. At
    x = 0.5 with the local score's fill correction (`_chance_corrected`) the impostor
    tails of the three settings coincide best; the measurements are in `_global_score`.
    """
    if DENSITY_EXP == 1.0:
        return rho
    return float(DENSITY_REF * (rho / DENSITY_REF) ** DENSITY_EXP)


def _fold(d: float) -> float:
    """An angle difference in steps folded into [-32, 32)."""
    return (d + ANGLE_STEPS / 2) % ANGLE_STEPS - ANGLE_STEPS / 2


def _n_pairs(size: int) -> int:
    """How many pairs the score averages: more for larger templates (MCC's n_P)."""
    t = 1.0 / (1.0 + math.exp(-0.4 * (size - 20)))
    return MIN_NP + int(round(t * (MAX_NP - MIN_NP)))


def _compatibility(
    xa1: float, ya1: float, ta1: float, xa2: float, ya2: float, ta2: float,
    xb1: float, yb1: float, tb1: float, xb2: float, yb2: float, tb2: float,
) -> float:  # fmt: skip
    """How well two pairs agree: distance, relative direction and radial angles (0..1)."""
    dxa, dya = xa2 - xa1, ya2 - ya1
    dxb, dyb = xb2 - xb1, yb2 - yb1
    da = math.sqrt(dxa * dxa + dya * dya)
    db = math.sqrt(dxb * dxb + dyb * dyb)
    tol = DIST_TOL_BASE + DIST_TOL_SLOPE * (da + db) / 2
    z1 = 1.0 - abs(da - db) / (2 * tol)
    if z1 <= 0.0:
        return 0.0
    z2 = 1.0 - abs(_angle_diff(_angle_diff(ta1, ta2), _angle_diff(tb1, tb2))) / (2 * ANGLE_TOL)
    if z2 <= 0.0:
        return 0.0
    if da < 1e-9 or db < 1e-9:
        return z1 * z2
    la = math.atan2(dya, dxa)
    lb = math.atan2(dyb, dxb)
    z3 = 1.0 - abs(_angle_diff(_angle_diff(ta1, la), _angle_diff(tb1, lb))) / (2 * ANGLE_TOL)
    if z3 <= 0.0:
        return 0.0
    return min(1.0, z1) * min(1.0, z2) * min(1.0, z3)


def score(reference: bytes, probe: bytes) -> int:
    """`compare(extract(reference), extract(probe))`."""
    return compare(extract(reference), extract(probe))
