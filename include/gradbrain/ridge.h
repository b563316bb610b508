/* gradbrain — the encoding math: folds, standardization, PCA, ridge with per-target alpha
 * chosen by efficient leave-one-out (GCV) or inner K-fold, Pearson correlation.
 *
 * All matrices are row-major float32, rows = images. Sums that need it run in float64. */
#ifndef GRADBRAIN_RIDGE_H
#define GRADBRAIN_RIDGE_H

#include <stdint.h>

#include "gradbrain/status.h"

/* scikit-learn KFold(k) without shuffling: contiguous folds, the first n % k have n/k + 1
 * rows. Writes k starts and stops (test rows of fold f are [start[f], stop[f])). */
gb_status gb_kfold_bounds(int64_t n, int k, int64_t *start, int64_t *stop);

/* Column mean and std (population, ddof=0, as StandardScaler) of X (n x p) over the rows
 * listed in `rows` (n_rows of them). A constant column gets scale 1 (as scikit-learn). */
void gb_standardize_fit(const float *X, int64_t p, const int64_t *rows, int64_t n_rows,
                        double *mean, double *scale);
/* out (n_rows x p) = (X[rows] - mean) / scale. */
void gb_standardize_apply(const float *X, int64_t p, const int64_t *rows, int64_t n_rows,
                          const double *mean, const double *scale, float *out);

/* Top-k principal axes of the centered matrix Z (n x p) by randomized SVD (Halko et al.:
 * oversampling 10, `power_iters` power iterations with QR re-orthonormalization, seeded).
 * Writes components (p x k, orthonormal columns, sign fixed so that each column's largest
 * |entry| is positive). */
gb_status gb_pca_randomized(const float *Z, int64_t n, int64_t p, int k, int power_iters,
                            uint64_t seed, float *components);
/* Exact top-k principal axes via the eigendecomposition of Z^T Z (float64). */
gb_status gb_pca_exact(const float *Z, int64_t n, int64_t p, int k, float *components);

/* A ridge problem's decomposition on training rows, shared by every alpha and target:
 * Xc = X - mean(X) = U diag(s) V^T (thin, rank r). Intercept handled by centering. */
typedef struct {
  int64_t n, p, r;
  float *U;      /* n x r */
  float *V;      /* p x r */
  double *s2;    /* r: squared singular values */
  double *xmean; /* p: column means removed before decomposing */
} gb_ridge_decomp;

/* Decomposes X (n x p). Uses the eigendecomposition of the smaller Gram matrix in float64;
 * directions with s^2 <= 1e-12 * max s^2 are dropped (they carry no fit). */
gb_status gb_ridge_decompose(const float *X, int64_t n, int64_t p, gb_ridge_decomp *d);
void gb_ridge_decomp_free(gb_ridge_decomp *d);

/* Z = U^T Yc (r x m): the coefficients every alpha's fit is made of. */
gb_status gb_ridge_coef(const gb_ridge_decomp *d, const float *Yc, int64_t m, float *Z);
/* Efficient leave-one-out error of ridge with intercept for every alpha and every target:
 * Yc (n x m, columns centered over the n rows) -> loo (n_alpha x m, float64 sums of squared
 * LOO residuals). Also returns Z = U^T Yc (r x m) for later prediction, if Z != NULL. */
gb_status gb_ridge_loo(const gb_ridge_decomp *d, const float *Yc, int64_t m, const double *alphas,
                       int n_alpha, double *loo, float *Z);
/* For each target, the index of the alpha with the smallest score (first on ties). */
void gb_argmin_alpha(const double *score, int n_alpha, int64_t m, int *best);
/* Predicts Xnew (n_new x p, raw, same space as the decomposed X) for each target j with
 * alpha[best[j]]: pred = (Xnew - xmean) V diag(s/(s^2+a)) Z[:, j] + ymean[j]. With ymean NULL
 * the mean is not added: correlations are then computed without losing the small variations
 * of strongly regularized predictions to float32 rounding of a large mean. */
gb_status gb_ridge_predict(const gb_ridge_decomp *d, const float *Xnew, int64_t n_new, const float *Z,
                           int64_t m, const double *alphas, const int *best, const double *ymean,
                           float *pred);

/* Validation error for inner K-fold selection: for every alpha, adds to sse (n_alpha x m)
 * the squared error of predicting Yval (n_val x m, raw) from Xval with ymean + the ridge
 * fit whose Z = U^T Yc came from gb_ridge_loo on the training rows. */
gb_status gb_ridge_val_sse(const gb_ridge_decomp *d, const float *Xval, int64_t n_val, const float *Z,
                           int64_t m, const double *alphas, int n_alpha, const float *Yval,
                           const double *ymean, double *sse);

/* Pearson r between columns of A and B (n x m, leading dimension m); NaN when a column is
 * exactly constant (as numpy's 0/0). */
void gb_pearson_columns(const float *A, const float *B, int64_t n, int64_t m, float *r);

#endif
