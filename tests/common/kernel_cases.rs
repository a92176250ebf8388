//! Helpers shared by the native (`tests/kernels.rs`) and browser (`tests/web_kernels.rs`)
//! kernel parity tests: random head plans and queries from the crate's generator
//! ([`SplitMix64`]), the tolerance check against the scalar scores, and the odd shapes to
//! try.
#![allow(dead_code)] // each test crate uses its own subset

use vitrine::kernels::{CpuKernel, HeadPlan, Int8Items, ItemVectors, QueryI8, UserQuery};
pub use vitrine::rng::SplitMix64;

pub const TOL: f32 = 1e-4;

/// Uniform in [-1, 1).
pub fn unit(rng: &mut SplitMix64) -> f32 {
    rng.next_f32() * 2.0 - 1.0
}

/// `len` values uniform in [-scale, scale).
pub fn random_vec(rng: &mut SplitMix64, len: usize, scale: f32) -> Vec<f32> {
    (0..len).map(|_| unit(rng) * scale).collect()
}

pub fn random_plan(
    rng: &mut SplitMix64,
    n: usize,
    d: usize,
    h: usize,
    extra: &[usize],
) -> HeadPlan {
    let mut layers = Vec::new();
    let mut width = h;
    for &w in extra {
        let scale = 1.0 / (width as f32).sqrt();
        layers.push((random_vec(rng, width * w, scale), random_vec(rng, w, 0.1)));
        width = w;
    }
    HeadPlan {
        n_items: n,
        dim: d,
        hidden: h,
        item_vectors: random_vec(rng, n * d, 1.0).into(),
        layers,
        w_out: random_vec(rng, width, 1.0 / (width as f32).sqrt()),
        b_out: unit(rng),
        gpu_f16: false,
    }
}

pub fn random_query(rng: &mut SplitMix64, plan: &HeadPlan) -> UserQuery {
    let scale = 1.0 / (plan.dim as f32).sqrt();
    UserQuery {
        m: random_vec(rng, plan.dim * (plan.hidden + 1), scale),
        a: random_vec(rng, plan.hidden, 0.3),
    }
}

pub fn scores(kernel: CpuKernel, plan: &HeadPlan, query: &UserQuery) -> Vec<f32> {
    let mut out = vec![f32::NAN; plan.n_items];
    kernel.scores(plan, query, &mut out);
    out
}

pub fn assert_close(what: &str, expected: &[f32], got: &[f32]) {
    assert_eq!(expected.len(), got.len(), "{what}: length");
    for (i, (x, y)) in expected.iter().zip(got).enumerate() {
        assert!(
            (x - y).abs() <= TOL * (1.0 + x.abs()),
            "{what}: item {i}: scalar {x}, got {y}"
        );
    }
}

/// The CPU kernels a parity test compares with scalar: every entry of
/// [`CpuKernel::ALL`] except the scalar reference itself. Panics (so the test fails
/// rather than passing over nothing) if the list is empty, does not start with
/// [`CpuKernel::Scalar`], or lacks `fast`, the kernel this target must have.
pub fn fast_kernels(fast: CpuKernel) -> Vec<CpuKernel> {
    let all = CpuKernel::ALL;
    assert_eq!(all.first(), Some(&CpuKernel::Scalar), "ALL = {all:?}");
    assert!(all.contains(&fast), "ALL = {all:?} lacks {fast:?}");
    assert_eq!(CpuKernel::best(), fast, "the best kernel of this target");
    let rest: Vec<CpuKernel> = all[1..].to_vec();
    assert!(!rest.is_empty(), "no fast kernel to test");
    rest
}

/// Shapes: every n with a rotating (d, h) and each extra-layer setting, plus every (d, h)
/// at a middling n with the first `extras_at_37` extra-layer settings.
pub fn shapes(extras_at_37: usize) -> Vec<(usize, usize, usize, Vec<usize>)> {
    let ns = [0usize, 1, 7, 33, 1000, 4099];
    let ds = [1usize, 3, 16, 33, 64];
    let hs = [1usize, 5, 32, 64];
    // The last two end on a width that is a multiple of 8 (the SIMD128 int8 path then
    // folds the output layer into the last layer's GEMM) and one that is not.
    let extras: [&[usize]; 4] = [&[], &[17], &[32, 5], &[24, 16]];
    let mut out = Vec::new();
    for (i, &n) in ns.iter().enumerate() {
        for (e, extra) in extras.iter().enumerate() {
            let d = ds[(i + e) % ds.len()];
            let h = hs[(i + 2 * e) % hs.len()];
            out.push((n, d, h, extra.to_vec()));
        }
    }
    for &d in &ds {
        for &h in &hs {
            for extra in &extras[..extras_at_37] {
                out.push((37, d, h, extra.to_vec()));
            }
        }
    }
    out
}

/// Every kernel in `fast` against the scalar reference on the odd shapes of
/// [`shapes`]`(extras_at_37)`, with fresh random plans and queries from `rng`.
pub fn check_parity_on_odd_shapes(rng: &mut SplitMix64, fast: &[CpuKernel], extras_at_37: usize) {
    for (n, d, h, extra) in shapes(extras_at_37) {
        let plan = random_plan(rng, n, d, h, &extra);
        let query = random_query(rng, &plan);
        let want = scores(CpuKernel::Scalar, &plan, &query);
        assert!(want.iter().all(|x| x.is_finite()));
        for &kernel in fast {
            let got = scores(kernel, &plan, &query);
            assert_close(
                &format!("{} n={n} d={d} h={h} extra={extra:?}", kernel.name()),
                &want,
                &got,
            );
        }
    }
}

/// `CpuKernel::try_scores_of` for every kernel in `kernels` on the odd shapes of
/// [`shapes`]`(1)`: lists of items (empty, one, a block and a bit, unsorted with
/// repeats, the last item) get bit for bit the kernel's own full-catalogue scores, and
/// hence the scalar scores within the tolerance; an index past the catalogue and an
/// `out` of the wrong length are errors.
pub fn check_subset_parity(rng: &mut SplitMix64, kernels: &[CpuKernel]) {
    for (n, d, h, extra) in shapes(1) {
        let plan = random_plan(rng, n, d, h, &extra);
        let query = random_query(rng, &plan);
        let want = scores(CpuKernel::Scalar, &plan, &query);
        let mut lists: Vec<Vec<u32>> = vec![vec![]];
        if n > 0 {
            lists.push(vec![(n - 1) as u32]);
            for len in [67, 2 * n + 3] {
                lists.push((0..len).map(|_| rng.below(n as u64) as u32).collect());
            }
        }
        for &kernel in kernels {
            let full = scores(kernel, &plan, &query);
            for items in &lists {
                let what = format!(
                    "{} subset of {} n={n} d={d} h={h} extra={extra:?}",
                    kernel.name(),
                    items.len()
                );
                let mut got = vec![f32::NAN; items.len()];
                kernel
                    .try_scores_of(&plan, &query, items, &mut got)
                    .expect(&what);
                let own: Vec<f32> = items.iter().map(|&i| full[i as usize]).collect();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&own), "{what}: bit for bit");
                let scalar: Vec<f32> = items.iter().map(|&i| want[i as usize]).collect();
                assert_close(&what, &scalar, &got);
            }
            let mut out = [0.0f32; 1];
            assert!(kernel
                .try_scores_of(&plan, &query, &[n as u32], &mut out)
                .is_err());
            assert!(kernel.try_scores_of(&plan, &query, &[], &mut out).is_err());
        }
    }
}

/// `plan` with its item vectors quantised to int8 (per-row scale).
pub fn int8_plan(plan: &HeadPlan) -> HeadPlan {
    let v = plan.item_vectors.to_f32();
    HeadPlan {
        item_vectors: ItemVectors::Int8(Int8Items::from_f32(&v, plan.dim)),
        ..plan.clone()
    }
}

/// `plan` held as f16 on the GPU ([`HeadPlan::gpu_f16`]), with one element of
/// item 0 set past f16's range (1e6, which the upload saturates to 65504) when `n ≥ 1`,
/// and the f32 plan it must score as: those vectors rounded to f16 and back.
pub fn f16_plans(plan: &HeadPlan) -> (HeadPlan, HeadPlan) {
    let mut v = plan.item_vectors.to_f32().into_owned();
    if let Some(x) = v.first_mut() {
        *x = 1e6;
    }
    let rounded = v
        .iter()
        .map(|&x| half::f16::from_f32(x.clamp(-65504.0, 65504.0)).to_f32())
        .collect::<Vec<f32>>();
    let f16 = HeadPlan {
        item_vectors: ItemVectors::F32(v),
        gpu_f16: true,
        ..plan.clone()
    };
    let f32s = HeadPlan {
        item_vectors: ItemVectors::F32(rounded),
        gpu_f16: false,
        ..plan.clone()
    };
    (f16, f32s)
}

/// Random int8 rows: mostly from random vectors, with the extremes mixed in (rows of
/// all `+127` / `-127`, a zero row), so a kernel that saturates or wraps shows it.
pub fn random_int8_items(rng: &mut SplitMix64, n: usize, d: usize) -> Int8Items {
    let mut items = Int8Items::with_capacity(d, n);
    for i in 0..n {
        let row: Vec<f32> = match i % 7 {
            0 => vec![1.0; d],
            1 => vec![-1.0; d],
            2 => vec![0.0; d],
            _ => random_vec(rng, d, 1.0),
        };
        items.push_row(&row);
    }
    items
}

/// A random query for `items`, with its extremes: column 0 all `+63` or `-63`
/// (whichever makes the products with the extreme rows largest).
pub fn random_int8_query(rng: &mut SplitMix64, items: &Int8Items, cols: usize) -> QueryI8 {
    let d = items.dim;
    let mut m = random_vec(rng, d * cols, 1.0);
    for k in 0..d {
        m[k * cols] = if rng.below(2) == 0 { 1.0 } else { -1.0 };
    }
    QueryI8::new(&m, d, cols, items.stride)
}

/// Every kernel's i32 first-layer products ([`CpuKernel::int8_products`]) equal the
/// scalar reference's bit for bit, on odd shapes with extreme values.
pub fn check_int8_products_exact(rng: &mut SplitMix64, kernels: &[CpuKernel]) {
    for (n, d, h, _) in shapes(1) {
        let items = random_int8_items(rng, n, d);
        let q = random_int8_query(rng, &items, h + 1);
        let mut want = vec![0i32; n * (h + 1)];
        CpuKernel::Scalar
            .int8_products(&items, &q, &mut want)
            .unwrap();
        if n > 1 && d > 1 {
            assert!(
                want.iter().any(|&x| x.abs() > 127 * 63),
                "n={n} d={d}: no large sum"
            );
        }
        for &kernel in kernels {
            let mut got = vec![i32::MIN; n * (h + 1)];
            kernel.int8_products(&items, &q, &mut got).unwrap();
            assert_eq!(got, want, "{} n={n} d={d} h={h}", kernel.name());
        }
    }
}

/// On int8 plans of odd shapes, every kernel in `fast` scores like the scalar int8
/// reference (within [`TOL`]: the f32 layers after the integer one are reordered), and
/// its subset scores are its full scores bit for bit.
pub fn check_int8_parity(rng: &mut SplitMix64, fast: &[CpuKernel]) {
    for (n, d, h, extra) in shapes(1) {
        let plan = int8_plan(&random_plan(rng, n, d, h, &extra));
        let query = random_query(rng, &plan);
        let want = scores(CpuKernel::Scalar, &plan, &query);
        assert!(want.iter().all(|x| x.is_finite()));
        // A NaN first-layer bias: the reference's ReLU (`max(0.0)`) makes that column
        // 0, so the scores stay finite; a kernel whose ReLU lets NaN through (the
        // relaxed build may lower `pmax` to `relaxed_max`) scores NaN.
        let mut nan_query = query.clone();
        nan_query.a[0] = f32::NAN;
        let want_nan = scores(CpuKernel::Scalar, &plan, &nan_query);
        assert!(want_nan.iter().all(|x| x.is_finite()));
        for &kernel in fast {
            let what = format!("{} int8 n={n} d={d} h={h} extra={extra:?}", kernel.name());
            let got = scores(kernel, &plan, &query);
            assert_close(&what, &want, &got);
            let got_nan = scores(kernel, &plan, &nan_query);
            assert_close(&format!("{what}, NaN bias"), &want_nan, &got_nan);
            if n > 0 {
                let items: Vec<u32> = (0..70).map(|_| rng.below(n as u64) as u32).collect();
                let mut sub = vec![f32::NAN; items.len()];
                kernel
                    .try_scores_of(&plan, &query, &items, &mut sub)
                    .unwrap();
                for (&i, y) in items.iter().zip(&sub) {
                    assert_eq!(
                        got[i as usize].to_bits(),
                        y.to_bits(),
                        "{what}: subset item {i}"
                    );
                }
            }
        }
    }
}

/// Items shared by the top `k` of `a` and of `b`, over `k`.
pub fn top_k_overlap(a: &[f32], b: &[f32], k: usize) -> f64 {
    let ta: std::collections::HashSet<u32> = vitrine::kernels::top_k(a, k)
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    let tb = vitrine::kernels::top_k(b, k);
    tb.iter().filter(|(i, _)| ta.contains(i)).count() as f64 / k as f64
}
