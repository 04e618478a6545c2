// Throwaway cost prototype for bench/bench_fused_prototype.py (issue 21): what the default
// scan's signatures need besides the pHash/dHash grids (the grey image and its histogram,
// the 64 x 64 area average, the 8 x 8 RGB area cells, the 4 x 4 coarse image and both
// Laplacians' sums) in two passes written for the compiler to vectorise: rows are first
// accumulated vertically into the output rows they fall in (whole-row loops), then each
// output row is reduced horizontally. Not byte-identical to OpenCV: a cost estimate only.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int j; float w0, w1; } Tab;  // source index -> output j (w0), j + 1 (w1)

static void tabs(int n, int m, Tab *t) {
    double scale = (double)n / m;
    for (int i = 0; i < n; i++) {
        int j = (int)(i / scale);
        if (j >= m) j = m - 1;
        double end = (j + 1) * scale;
        double w0 = (i + 1 <= end) ? 1.0 : end - i;
        t[i].j = j;
        t[i].w0 = (float)(w0 / scale);
        t[i].w1 = (j + 1 < m) ? (float)((1.0 - w0) / scale) : 0.0f;
    }
}

static void add_scaled(float *restrict out, const float *restrict in, float w, int n) {
    for (int i = 0; i < n; i++) out[i] += in[i] * w;
}

static void reduce_rows(const float *rows, int nrows, int width, int channels,
                        const Tab *t, int m, float *out) {
    memset(out, 0, sizeof(float) * nrows * m * channels);
    for (int r = 0; r < nrows; r++) {
        const float *row = rows + (size_t)r * width * channels;
        float *o = out + (size_t)r * m * channels;
        for (int x = 0; x < width; x++)
            for (int c = 0; c < channels; c++) {
                float v = row[x * channels + c];
                o[t[x].j * channels + c] += v * t[x].w0;
                if (t[x].w1 > 0) o[(t[x].j + 1) * channels + c] += v * t[x].w1;
            }
    }
}

static void laplacian(const uint8_t *g, int h, int w, int64_t *sum, int64_t *sq) {
    int64_t s = 0, q = 0;
    for (int y = 1; y < h - 1; y++) {
        const uint8_t *u = g + (size_t)(y - 1) * w, *m = u + w, *d = m + w;
        int32_t rs = 0, rq = 0;
        for (int x = 1; x < w - 1; x++) {
            int32_t l = (int32_t)u[x] + d[x] + m[x - 1] + m[x + 1] - 4 * (int32_t)m[x];
            rs += l;
            rq += l * l;
        }
        s += rs;
        q += rq;
    }
    *sum = s;
    *sq = q;
}

void fused(const uint8_t *rgb, int h, int w, uint8_t *gray, uint32_t *hist,
           float *small, int sh, int sw, float *cells, int side,
           int64_t *lap /* sum, sumsq, count; the coarse image's too */, uint16_t *coarse) {
    Tab *tx = malloc(sizeof(Tab) * w), *ty = malloc(sizeof(Tab) * h);
    Tab *cx = malloc(sizeof(Tab) * w), *cy = malloc(sizeof(Tab) * h);
    tabs(w, sw, tx); tabs(h, sh, ty); tabs(w, side, cx); tabs(h, side, cy);
    float *vs = calloc((size_t)(sh + 1) * w, sizeof(float));
    float *vc = calloc((size_t)(side + 1) * w * 3, sizeof(float));
    float *gf = malloc(sizeof(float) * w), *cf = malloc(sizeof(float) * w * 3);
    uint32_t sub[4][256];
    memset(sub, 0, sizeof(sub));
    int cw = w / 4, ch = h / 4;
    uint16_t *band = calloc(w, sizeof(uint16_t));
    for (int y = 0; y < h; y++) {
        const uint8_t *row = rgb + (size_t)y * w * 3;
        uint8_t *g = gray + (size_t)y * w;
        for (int x = 0; x < w; x++)  // OpenCV's RGB2GRAY fixed point
            g[x] = (uint8_t)((row[3 * x] * 4899 + row[3 * x + 1] * 9617
                              + row[3 * x + 2] * 1868 + 8192) >> 14);
        int x = 0;
        for (; x + 4 <= w; x += 4) {
            sub[0][g[x]]++; sub[1][g[x + 1]]++; sub[2][g[x + 2]]++; sub[3][g[x + 3]]++;
        }
        for (; x < w; x++) sub[0][g[x]]++;
        for (x = 0; x < w; x++) gf[x] = g[x];
        for (x = 0; x < 3 * w; x++) cf[x] = row[x];
        add_scaled(vs + (size_t)ty[y].j * w, gf, ty[y].w0, w);
        if (ty[y].w1 > 0) add_scaled(vs + (size_t)(ty[y].j + 1) * w, gf, ty[y].w1, w);
        add_scaled(vc + (size_t)cy[y].j * w * 3, cf, cy[y].w0, 3 * w);
        if (cy[y].w1 > 0) add_scaled(vc + (size_t)(cy[y].j + 1) * w * 3, cf, cy[y].w1, 3 * w);
        if (y < ch * 4) {
            for (x = 0; x < w; x++) band[x] += g[x];
            if (y % 4 == 3) {
                uint16_t *cr = coarse + (y / 4) * cw;
                for (int k = 0; k < cw; k++)
                    cr[k] = (uint16_t)((band[4 * k] + band[4 * k + 1] + band[4 * k + 2]
                                        + band[4 * k + 3] + 8) >> 4);
                memset(band, 0, sizeof(uint16_t) * w);
            }
        }
    }
    for (int v = 0; v < 256; v++) hist[v] = sub[0][v] + sub[1][v] + sub[2][v] + sub[3][v];
    reduce_rows(vs, sh, w, 1, tx, sw, small);
    reduce_rows(vc, side, w, 3, cx, side, cells);
    laplacian(gray, h, w, &lap[0], &lap[1]);
    lap[2] = (int64_t)(h - 2) * (w - 2);
    uint8_t *c8 = malloc((size_t)cw * ch + 1);
    for (int i = 0; i < cw * ch; i++) c8[i] = (uint8_t)coarse[i];
    laplacian(c8, ch, cw, &lap[3], &lap[4]);
    lap[5] = (int64_t)(ch - 2) * (cw - 2);
    free(c8); free(band); free(gf); free(cf); free(vs); free(vc);
    free(tx); free(ty); free(cx); free(cy);
}
