// Recursive indicator scans for tickpath.kernels on CUDA (loaded by gpu.py as cupy RawKernels).
//
// One thread per instrument; inputs are time-major [T][R] (row r of time t at t*R + r) so the
// threads of a warp read consecutive addresses at each step (coalesced). Each kernel is the
// same recurrence as xp_programs.ema_scan / wilder_scan and the numba kernels: per-row start
// index (first valid point), a seed that is the plain mean of n points, then the update; NaN
// before start + n - 1. Compiled by NVRTC at run time; tests compile it with nvcc when present.

extern "C" {

__global__ void ema_scan(const double* __restrict__ x, const long long* __restrict__ start,
                         double* __restrict__ out, const int R, const int T, const int n,
                         const double k)
{
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= R) return;
    const long long s = start[r];
    const double keep = 1.0 - k;
    double acc = 0.0;
    double prev = 0.0;
    for (int t = 0; t < T; ++t) {
        const double xt = x[(long long)t * R + r];
        if (t >= s && t < s + n) acc += xt;
        if (t == s + n - 1) prev = acc / n;
        else if (t >= s + n) prev = fma(prev, keep, k * xt);   // prev*(1-k) + k*x
        out[(long long)t * R + r] = (t < s + n - 1) ? nan("") : prev;
    }
}

// rsi_mode 1: v is the one-bar price difference, output 100*g/(g+l) (0 when g+l is 0 or NaN)
// rsi_mode 0: v is the true range, output the Wilder average itself (ATR)
__global__ void wilder_scan(const double* __restrict__ v, const long long* __restrict__ start,
                            double* __restrict__ out, const int R, const int T, const int n,
                            const int rsi_mode)
{
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= R) return;
    const long long s = start[r];
    const double keep = (n - 1.0) / n;
    const double inv = 1.0 / n;
    double g = 0.0;
    double l = 0.0;
    for (int t = 0; t < T; ++t) {
        const double vt = v[(long long)t * R + r];
        const double gain = rsi_mode ? ((vt < 0.0) ? 0.0 : vt) : vt;
        const double loss = (vt < 0.0) ? -vt : 0.0;
        if (t >= s && t < s + n) { g += gain; l += loss; }
        else if (t >= s + n) { g = fma(g, keep, gain * inv); l = fma(l, keep, loss * inv); }
        if (t == s + n - 1) { g /= n; l /= n; }
        double o;
        if (rsi_mode) {
            const double tot = g + l;
            o = (tot > 0.0 || tot < 0.0) ? 100.0 * (g / tot) : 0.0;
        } else {
            o = g;
        }
        out[(long long)t * R + r] = (t < s + n - 1) ? nan("") : o;
    }
}

}  // extern "C"
