/* Ridge regression with one alpha per target, chosen by efficient leave-one-out.
 *
 * The math. Center X and y on the training rows (this is the intercept: it is the
 * unpenalized direction 1/sqrt(n), orthogonal to every centered column). With the thin
 * decomposition Xc = U diag(s) V^T and d_j(a) = s_j^2 / (s_j^2 + a):
 *   fitted values        yhat = U diag(d) U^T y                   (+ mean(y))
 *   leverages            h_i  = 1/n + sum_j U_ij^2 d_j            (hat matrix incl. intercept)
 *   LOO residuals        e_i  = (y_i - yhat_i) / (1 - h_i)
 *   weights              w    = V diag(s / (s^2 + a)) U^T y
 * This equals scikit-learn's RidgeCV GCV mode (its c / diag(G^-1) with the intercept
 * column's weight -1/a, multiplied through by a). One decomposition serves every alpha and
 * every target; per target batch the work is GEMMs: Z = U^T Y once, then U (d .* Z) for the
 * alphas, through a low-rank basis of the shrinkage factors (see shrinkage_basis). The alpha with the smallest sum of squared LOO residuals wins (first on ties, as
 * numpy's argmin in scikit-learn). */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "gradbrain/arena.h"
#include "gradbrain/blas.h"
#include "gradbrain/gemm_x3.h"
#include "gradbrain/ridge.h"

void gb_ridge_decomp_free(gb_ridge_decomp *d) {
  gb_free(d->U);
  gb_free(d->V);
  gb_free(d->s2);
  gb_free(d->xmean);
  memset(d, 0, sizeof *d);
}

/* Eigendecomposition of a symmetric matrix (float64, row-major, overwritten by the
 * eigenvectors as columns), eigenvalues ascending. */
static gb_status sym_eig(double *G, int64_t k, double *w) {
  lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)k, G, (lapack_int)k, w);
  if (info != 0) return gb_fail(GB_ERR_NUMERIC, "eigendecomposition of a %lldx%lld Gram matrix failed (LAPACK dsyevd info=%d)", (long long)k, (long long)k, (int)info);
  return GB_OK;
}

gb_status gb_ridge_decompose(const float *X, int64_t n, int64_t p, gb_ridge_decomp *d) {
  memset(d, 0, sizeof *d);
  d->n = n;
  d->p = p;
  d->xmean = gb_calloc((size_t)p * 8, "column means");
  double *Xd = gb_alloc((size_t)(n * p) * 8, "centered design (float64)");
  int64_t k = p <= n ? p : n;
  double *G = gb_alloc((size_t)(k * k) * 8, "Gram matrix");
  double *ev = gb_alloc((size_t)k * 8, "eigenvalues");
  gb_status st = GB_OK;
  if (!d->xmean || !Xd || !G || !ev) {
    st = GB_ERR_NOMEM;
    goto done;
  }
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < p; j++) d->xmean[j] += X[i * p + j];
  for (int64_t j = 0; j < p; j++) d->xmean[j] /= (double)n;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < p; j++) Xd[i * p + j] = (double)X[i * p + j] - d->xmean[j];
  if (p <= n)
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)p, (int)n, 1.0, Xd, (int)p, 0.0, G, (int)p);
  else
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)n, (int)p, 1.0, Xd, (int)p, 0.0, G, (int)n);
  st = sym_eig(G, k, ev);
  if (st != GB_OK) goto done;
  double smax = ev[k - 1] > 0 ? ev[k - 1] : 0;
  int64_t r = 0;
  for (int64_t j = 0; j < k; j++)
    if (ev[j] > 1e-12 * smax && ev[j] > 0) r++;
  if (r == 0) r = 0;
  d->r = r;
  d->s2 = gb_alloc((size_t)(r ? r : 1) * 8, "singular values");
  d->U = gb_alloc((size_t)(n * (r ? r : 1)) * 4, "U");
  d->V = gb_alloc((size_t)(p * (r ? r : 1)) * 4, "V");
  double *tmp = gb_alloc((size_t)((p > n ? p : n) * (r ? r : 1)) * 8, "basis");
  if (!d->s2 || !d->U || !d->V || !tmp) {
    gb_free(tmp);
    st = GB_ERR_NOMEM;
    goto done;
  }
  /* eigenvalues ascending: keep the top r, ordered descending */
  double *E = gb_alloc((size_t)(k * (r ? r : 1)) * 8, "eigenvectors");
  if (!E) {
    gb_free(tmp);
    st = GB_ERR_NOMEM;
    goto done;
  }
  for (int64_t c = 0; c < r; c++) {
    int64_t src = k - 1 - c;
    d->s2[c] = ev[src];
    for (int64_t i = 0; i < k; i++) E[i * r + c] = G[i * k + src];
  }
  if (p <= n) {
    /* V = eigenvectors of Xc^T Xc; U = Xc V / s */
    for (int64_t i = 0; i < p * r; i++) d->V[i] = (float)E[i];
    /* U in float32 (Xc V is an n x p x r product, the largest of the decomposition): a column
     * of U with a small s_j gets a relative error ~ 1e-7 s_max/s_j, and enters every fit
     * through d_j = s_j^2/(s_j^2+a), so its effect stays at float32 rounding level */
    float *Xf = gb_alloc((size_t)(n * p) * 4, "centered design");
    if (!Xf) {
      gb_free(E);
      gb_free(tmp);
      st = GB_ERR_NOMEM;
      goto done;
    }
    for (int64_t i = 0; i < n * p; i++) Xf[i] = (float)Xd[i];
    if (r) gb_sgemm('N', 'N', (int)n, (int)r, (int)p, 1.f, Xf, (int)p, d->V, (int)r, 0.f, d->U, (int)r);
    gb_free(Xf);
    for (int64_t c = 0; c < r; c++) {
      float inv = (float)(1.0 / sqrt(d->s2[c]));
      for (int64_t i = 0; i < n; i++) d->U[i * r + c] *= inv;
    }
  } else {
    /* U = eigenvectors of Xc Xc^T; V = Xc^T U / s */
    for (int64_t i = 0; i < n * r; i++) d->U[i] = (float)E[i];
    if (r) cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)p, (int)r, (int)n, 1.0, Xd, (int)p, E, (int)r, 0.0, tmp, (int)r);
    for (int64_t i = 0; i < p; i++)
      for (int64_t c = 0; c < r; c++) d->V[i * r + c] = (float)(tmp[i * r + c] / sqrt(d->s2[c]));
  }
  gb_free(E);
  gb_free(tmp);
done:
  gb_free(Xd);
  gb_free(G);
  gb_free(ev);
  if (st != GB_OK) gb_ridge_decomp_free(d);
  return st;
}

/* The shrinkage matrix D (r x n_alpha), D_ja = s_j^2 / (s_j^2 + a), has low numerical rank:
 * where a << s^2 its columns are all ~1 - a/s^2, where a >> s^2 all ~s^2/a. With its SVD
 * D = B diag(sigma) C^T truncated where sigma_q < 1e-7 sigma_1 (below float32 rounding), the
 * fitted values of every alpha, U diag(D[:, a]) Z, are combinations sum_q C_aq M_q of the
 * k <= n_alpha products M_q = U diag(S[:, q]) Z, S[:, q] = sigma_q B[:, q]: k GEMMs instead
 * of n_alpha. Returns k, S (r x k) and Cmix (n_alpha x k); 0 on failure. */
static int shrinkage_basis(const double *s2, int64_t r, const double *alphas, int n_alpha, float **S_out,
                           double **C_out) {
  double *Dd = gb_alloc((size_t)(r * n_alpha) * 8, "shrinkage matrix");
  double *Bs = gb_alloc((size_t)(r * n_alpha) * 8, "its left singular vectors");
  double *sv = gb_alloc((size_t)n_alpha * 8, "its singular values");
  double *Ct = gb_alloc((size_t)(n_alpha * n_alpha) * 8, "its right singular vectors");
  int k = 0;
  *S_out = NULL;
  *C_out = NULL;
  if (!Dd || !Bs || !sv || !Ct) goto fail;
  for (int64_t j = 0; j < r; j++)
    for (int a = 0; a < n_alpha; a++) Dd[j * n_alpha + a] = s2[j] / (s2[j] + alphas[a]);
  int kmax = (int)(r < n_alpha ? r : n_alpha);
  if (LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)r, n_alpha, Dd, n_alpha, sv, Bs, kmax, Ct, n_alpha) != 0) goto fail;
  for (k = 0; k < kmax && sv[k] > 1e-7 * sv[0]; k++) {
  }
  float *S = gb_alloc((size_t)(r * k) * 4, "basis scales");
  double *C = gb_alloc((size_t)(n_alpha * k) * 8, "mixing weights");
  if (!S || !C) {
    gb_free(S);
    gb_free(C);
    k = 0;
    goto fail;
  }
  for (int64_t j = 0; j < r; j++)
    for (int q = 0; q < k; q++) S[j * k + q] = (float)(sv[q] * Bs[j * kmax + q]);
  for (int a = 0; a < n_alpha; a++)
    for (int q = 0; q < k; q++) C[a * k + q] = Ct[q * n_alpha + a];
  *S_out = S;
  *C_out = C;
fail:
  gb_free(Dd), gb_free(Bs), gb_free(sv), gb_free(Ct);
  return k;
}

enum { LOO_TC = 256, LOO_FLUSH = 32 }; /* targets per chunk (L1-sized); rows per float sum */

/* Adds the squared LOO residuals of rows [i0, i0+bn) to loo (n_alpha x m, float64), for the
 * targets [c0, c0+tc): e = (y - sum_q Cmix_aq M_q) w_a (w NULL: 1). Sums run in float32
 * over at most LOO_FLUSH rows, then in float64. acc: n_alpha x LOO_TC scratch. */
static void loo_accumulate(const float *Yc, int64_t m, const float *M, int64_t ldm, int k, const double *Cmix,
                           const float *w, int n_alpha, int64_t i0, int64_t bn, int64_t c0, int64_t tc, float *acc,
                           double *loo) {
  float cq[16];
  for (int64_t b0 = 0; b0 < bn; b0 += LOO_FLUSH) {
    int64_t b1 = b0 + LOO_FLUSH < bn ? b0 + LOO_FLUSH : bn;
    memset(acc, 0, (size_t)n_alpha * LOO_TC * sizeof(float));
    for (int64_t b = b0; b < b1; b++) {
      const float *yi = Yc + (i0 + b) * m + c0, *Mi = M + b * ldm + c0;
      for (int a = 0; a < n_alpha; a++) {
        for (int q = 0; q < k; q++) cq[q] = (float)Cmix[a * k + q];
        float wa = w ? w[(i0 + b) * n_alpha + a] : 1.0f, *ac = acc + a * LOO_TC;
#pragma omp simd
        for (int64_t t = 0; t < tc; t++) {
          float e = yi[t];
          for (int q = 0; q < k; q++) e -= cq[q] * Mi[q * m + t];
          e *= wa;
          ac[t] += e * e;
        }
      }
    }
    for (int a = 0; a < n_alpha; a++)
      for (int64_t t = 0; t < tc; t++) loo[(int64_t)a * m + c0 + t] += (double)acc[a * LOO_TC + t];
  }
}

/* The heart of both selection rules. For rows i of A (n_rows x r: U for leave-one-out,
 * the projected validation rows for K-fold) and every alpha a, adds to sse (n_alpha x m)
 *   sum_i w_ia^2 (Yt_i - sum_j A_ij D_ja Z_j)^2        (w = NULL: all 1)
 * with the fitted values formed through the shrinkage basis (k products A diag(S_q) Z).
 * Rows in blocks: M = A[block] [S_1 .* Z | ... | S_k .* Z] holds the k basis fits of the
 * block (nb x k*m). These products only rank the alphas, so on AMX they run in bf16x3
 * (gemm_x3.h: ~1e-5 relative per term, far below the error differences that decide a
 * choice; tests/test_encode_parity* check the chosen models against scikit-learn). */
static gb_status basis_sse(const gb_ridge_decomp *d, const float *A, int64_t n_rows, const float *Z, int64_t m,
                           const double *alphas, int n_alpha, const float *w, const float *Yt, double *sse) {
  int64_t r = d->r;
  float *S = NULL, *Zall = NULL, *M = NULL, *acc = NULL;
  double *C = NULL;
  gb_x3_left xa = {0};
  gb_x3_right xz = {0};
  gb_status st = GB_OK;
  int k = r ? shrinkage_basis(d->s2, r, alphas, n_alpha, &S, &C) : 0;
  if (r && k == 0) return gb_fail(GB_ERR_NUMERIC, "SVD of the %lldx%d shrinkage matrix failed", (long long)r, n_alpha);
  int64_t km = (int64_t)k * m, ldm = km + 16; /* +16: rows of M never 4 KB apart */
  int64_t nb = k ? (int64_t)((32u << 20) / ((size_t)km)) : n_rows;
  nb = nb / 32 * 32;
  if (nb < 32) nb = 32;
  if (nb > n_rows) nb = n_rows;
  int x3 = k && gb_x3_available();
  if (x3) {
    st = gb_x3_pack_left(A, n_rows, r, r, &xa);
    if (st == GB_OK) st = gb_x3_pack_right_scaled(Z, r, m, m, S, k, &xz);
    if (st != GB_OK) goto done;
  } else if (k) {
    Zall = gb_alloc((size_t)(r * km) * 4, "scaled U^T Y");
    if (!Zall) {
      st = GB_ERR_NOMEM;
      goto done;
    }
    for (int64_t j = 0; j < r; j++)
      for (int q = 0; q < k; q++)
        for (int64_t t = 0; t < m; t++) Zall[j * km + q * m + t] = S[j * k + q] * Z[j * m + t];
  }
  int nt = omp_get_max_threads();
  M = gb_alloc((size_t)(nb * ldm) * 4, "basis fits"); /* every column read is written first */
  acc = gb_alloc((size_t)nt * n_alpha * LOO_TC * sizeof(float), "error sums");
  if (!M || !acc) {
    st = GB_ERR_NOMEM;
    goto done;
  }
  int64_t nchunk = (m + LOO_TC - 1) / LOO_TC;
  for (int64_t i0 = 0; i0 < n_rows; i0 += nb) {
    int64_t bn = n_rows - i0 < nb ? n_rows - i0 : nb;
    if (x3) gb_x3_gemm(&xa, i0, bn, &xz, M, ldm);
    else if (k) gb_sgemm('N', 'N', (int)bn, (int)km, (int)r, 1.f, A + i0 * r, (int)r, Zall, (int)km, 0.f, M, (int)ldm);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nchunk; c++) {
      int64_t c0 = c * LOO_TC, tc = m - c0 < LOO_TC ? m - c0 : LOO_TC;
      loo_accumulate(Yt, m, M, ldm, k, C, w, n_alpha, i0, bn, c0, tc,
                     acc + (size_t)omp_get_thread_num() * n_alpha * LOO_TC, sse);
    }
  }
done:
  gb_free(S);
  gb_free(Zall);
  gb_free(M);
  gb_free(acc);
  gb_free(C);
  gb_x3_left_free(&xa);
  gb_x3_right_free(&xz);
  return st;
}

gb_status gb_ridge_coef(const gb_ridge_decomp *d, const float *Yc, int64_t m, float *Z) {
  if (d->r) gb_sgemm('T', 'N', (int)d->r, (int)m, (int)d->n, 1.f, d->U, (int)d->r, Yc, (int)m, 0.f, Z, (int)m);
  return GB_OK;
}

gb_status gb_ridge_loo(const gb_ridge_decomp *d, const float *Yc, int64_t m, const double *alphas,
                       int n_alpha, double *loo, float *Zout) {
  int64_t n = d->n, r = d->r;
  float *Z = Zout ? Zout : gb_alloc((size_t)((r ? r : 1) * m) * 4, "U^T Y");
  float *lev = gb_alloc((size_t)(n * n_alpha) * 4, "leverages");
  float *U2 = gb_alloc((size_t)(n * (r ? r : 1)) * 4, "U^2");
  float *D = gb_alloc((size_t)((r ? r : 1) * n_alpha) * 4, "shrinkage factors");
  gb_status st = GB_OK;
  if (!Z || !lev || !U2 || !D) {
    st = GB_ERR_NOMEM;
    goto done;
  }
  memset(loo, 0, (size_t)n_alpha * (size_t)m * sizeof *loo);
  gb_ridge_coef(d, Yc, m, Z);
  /* leverages h_i(a) = 1/n + sum_j U_ij^2 d_j(a), for every alpha at once; then w = 1/(1-h) */
  for (int64_t i = 0; i < n * r; i++) U2[i] = d->U[i] * d->U[i];
  for (int64_t j = 0; j < r; j++)
    for (int a = 0; a < n_alpha; a++) D[j * n_alpha + a] = (float)(d->s2[j] / (d->s2[j] + alphas[a]));
  for (int64_t i = 0; i < n * n_alpha; i++) lev[i] = (float)(1.0 / (double)n);
  if (r) gb_sgemm('N', 'N', (int)n, n_alpha, (int)r, 1.f, U2, (int)r, D, n_alpha, 1.f, lev, n_alpha);
  for (int64_t i = 0; i < n * n_alpha; i++) lev[i] = (float)(1.0 / (1.0 - (double)lev[i]));
  /* LOO residual of row i = (y_i - fitted_i) / (1 - h_i): U's rows, weights 1/(1-h) */
  st = basis_sse(d, d->U, n, Z, m, alphas, n_alpha, lev, Yc, loo);
done:
  if (!Zout) gb_free(Z);
  gb_free(lev);
  gb_free(U2);
  gb_free(D);
  return st;
}

void gb_argmin_alpha(const double *score, int n_alpha, int64_t m, int *best) {
  for (int64_t t = 0; t < m; t++) {
    int b = 0;
    for (int a = 1; a < n_alpha; a++)
      if (score[(int64_t)a * m + t] < score[(int64_t)b * m + t]) b = a;
    best[t] = b;
  }
}

/* A = (Xnew - xmean) V  (n_new x r) */
static gb_status project(const gb_ridge_decomp *d, const float *Xnew, int64_t n_new, float **A_out) {
  int64_t p = d->p, r = d->r;
  float *Xc = gb_alloc((size_t)(n_new * p) * 4, "centered new rows");
  float *A = gb_alloc((size_t)(n_new * (r ? r : 1)) * 4, "projected new rows");
  if (!Xc || !A) {
    gb_free(Xc);
    gb_free(A);
    return GB_ERR_NOMEM;
  }
  for (int64_t i = 0; i < n_new; i++)
    for (int64_t j = 0; j < p; j++) Xc[i * p + j] = (float)((double)Xnew[i * p + j] - d->xmean[j]);
  if (r) gb_sgemm('N', 'N', (int)n_new, (int)r, (int)p, 1.f, Xc, (int)p, d->V, (int)r, 0.f, A, (int)r);
  gb_free(Xc);
  *A_out = A;
  return GB_OK;
}

gb_status gb_ridge_predict(const gb_ridge_decomp *d, const float *Xnew, int64_t n_new, const float *Z,
                           int64_t m, const double *alphas, const int *best, const double *ymean,
                           float *pred) {
  int64_t r = d->r;
  float *A = NULL;
  GB_TRY(project(d, Xnew, n_new, &A));
  int n_alpha = 0;
  for (int64_t t = 0; t < m; t++)
    if (best[t] + 1 > n_alpha) n_alpha = best[t] + 1;
  int64_t *cols = gb_alloc((size_t)(m ? m : 1) * 8, "target index");
  float *Zs = gb_alloc((size_t)((r ? r : 1) * (m ? m : 1)) * 4, "selected coefficients");
  float *P = gb_alloc((size_t)(n_new * (m ? m : 1)) * 4, "predictions");
  if (!cols || !Zs || !P) {
    gb_free(A);
    gb_free(cols);
    gb_free(Zs);
    gb_free(P);
    return GB_ERR_NOMEM;
  }
  for (int a = 0; a < n_alpha; a++) {
    int64_t c = 0;
    for (int64_t t = 0; t < m; t++)
      if (best[t] == a) cols[c++] = t;
    if (c == 0) continue;
    for (int64_t j = 0; j < r; j++) {
      float f = (float)(sqrt(d->s2[j]) / (d->s2[j] + alphas[a]));
      for (int64_t q = 0; q < c; q++) Zs[j * c + q] = f * Z[j * m + cols[q]];
    }
    if (r) gb_sgemm('N', 'N', (int)n_new, (int)c, (int)r, 1.f, A, (int)r, Zs, (int)c, 0.f, P, (int)c);
    else memset(P, 0, (size_t)(n_new * c) * 4);
    for (int64_t i = 0; i < n_new; i++)
      for (int64_t q = 0; q < c; q++) pred[i * m + cols[q]] = (float)((double)P[i * c + q] + (ymean ? ymean[cols[q]] : 0.0));
  }
  gb_free(A);
  gb_free(cols);
  gb_free(Zs);
  gb_free(P);
  return GB_OK;
}

gb_status gb_ridge_val_sse(const gb_ridge_decomp *d, const float *Xval, int64_t n_val, const float *Z,
                           int64_t m, const double *alphas, int n_alpha, const float *Yval,
                           const double *ymean, double *sse) {
  float *A = NULL;
  GB_TRY(project(d, Xval, n_val, &A));
  /* fitted values of alpha a: A diag(s/(s^2+a)) Z = (A diag(1/s)) diag(s^2/(s^2+a)) Z */
  float *As = gb_alloc((size_t)(n_val * (d->r ? d->r : 1)) * 4, "scaled validation rows");
  float *Yt = gb_alloc((size_t)(n_val * m) * 4, "centered validation targets");
  double *part = gb_calloc((size_t)(n_alpha * m) * 8, "validation errors");
  gb_status st = GB_OK;
  if (!As || !Yt || !part) st = GB_ERR_NOMEM;
  if (st == GB_OK) {
    for (int64_t i = 0; i < n_val; i++)
      for (int64_t j = 0; j < d->r; j++) As[i * d->r + j] = (float)(A[i * d->r + j] / sqrt(d->s2[j]));
    for (int64_t i = 0; i < n_val; i++)
      for (int64_t t = 0; t < m; t++) Yt[i * m + t] = (float)((double)Yval[i * m + t] - ymean[t]);
    st = basis_sse(d, As, n_val, Z, m, alphas, n_alpha, NULL, Yt, part);
  }
  if (st == GB_OK)
    for (int64_t i = 0; i < n_alpha * m; i++) sse[i] += part[i];
  gb_free(A);
  gb_free(As);
  gb_free(Yt);
  gb_free(part);
  return st;
}
