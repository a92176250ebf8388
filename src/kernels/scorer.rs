//! [`Scorer`]: "score this [`UserQuery`] over this [`HeadPlan`]" on a CPU kernel or on the
//! GPU, falling back to the CPU for good on any GPU error. Used by the browser binding
//! (`crate::wasm`) and, natively, by the CLI (the GPU part through wgpu, driven with
//! `pollster::block_on`).
//!
//! Backend choice ([`BackendChoice`]):
//! - `Cpu(k)`: kernel `k` (use [`CpuKernel::best`] for the fastest one this build has).
//! - `Gpu`: the GPU whenever an adapter and device can be had, else [`CpuKernel::best`].
//! - `Auto`: as `Gpu`, then one warm pass of each is timed on a probe query: the GPU is
//!   kept only when `t_gpu <= t_cpu` (a software adapter such as SwiftShader or lavapipe is
//!   much slower than SIMD). The first GPU pass (shader warm-up) is not timed; if it fails
//!   the CPU is used.
//!
//! [`Scorer::shortlist`] runs the recommendation's shortlist ([`super::shortlist`]) on
//! the GPU after [`Scorer::set_items`]; `None` (the CPU backend, a request the GPU
//! refuses, or a GPU failure, which switches to the CPU as [`Scorer::scores`] does)
//! tells the caller to score every item instead.
//!
//! The scores are the same either way up to float rounding (the GPU's summation order
//! differs); every CPU kernel matches [`CpuKernel::Scalar`] as tested in `tests/kernels.rs`.
//! The environment (clock, console, whether a GPU API exists at all) comes in through
//! [`Hooks`], so this module needs no browser bindings.
//!
//! On the CPU, an int8 plan's first requests also choose the int8 multiply form where the
//! build has two ([`DotForm`]; the relaxed-SIMD wasm build): they alternate between the
//! forms, timing each call, and the faster is kept ([`DotTuner`]). The forms give the
//! same integers, so the choice changes no score.
use std::cell::RefCell;
#[cfg(feature = "gpu")]
use std::rc::Rc;

use super::shortlist::{ItemAttributes, Shortlist, ShortlistRequest};
use super::{CpuKernel, DotForm, HeadPlan, ItemVectors, ShapeError, UserQuery};

/// Which backend to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// The faster of the GPU and [`CpuKernel::best`], measured once at construction.
    Auto,
    /// The GPU whenever it works, else [`CpuKernel::best`].
    Gpu,
    /// This CPU kernel.
    Cpu(CpuKernel),
}

/// The environment the scorer reports to and measures with.
#[derive(Debug, Clone, Copy)]
pub struct Hooks {
    /// A monotonic clock in milliseconds (`performance.now()` in a browser).
    pub now_ms: fn() -> f64,
    /// Reports a fall-back to the CPU (`console.warn` in a browser).
    pub warn: fn(&str),
    /// Reports the `Auto` decision when the CPU wins (`console.info` in a browser).
    pub info: fn(&str),
    /// Whether a GPU API exists at all (`navigator.gpu` in a browser); when false the GPU
    /// is not even tried.
    pub gpu_present: fn() -> bool,
}

#[cfg(not(target_arch = "wasm32"))]
impl Hooks {
    /// Native: `std::time::Instant`, messages on stderr, the GPU always tried.
    pub fn native() -> Hooks {
        fn now_ms() -> f64 {
            static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            START
                .get_or_init(std::time::Instant::now)
                .elapsed()
                .as_secs_f64()
                * 1e3
        }
        fn say(msg: &str) {
            eprintln!("{msg}");
        }
        Hooks {
            now_ms,
            warn: say,
            info: say,
            gpu_present: || true,
        }
    }
}

/// The scoring path in use.
#[derive(Clone)]
enum Backend {
    #[cfg(feature = "gpu")]
    Gpu(Rc<super::gpu::GpuScorer>),
    Cpu(CpuKernel),
}

/// Scores user queries over one plan's items on the chosen backend (see the module docs).
/// Not `Send`: one per thread (a browser page or worker, the CLI's main thread).
pub struct Scorer {
    backend: RefCell<Backend>,
    /// The int8 multiply form's choice from this scorer's first int8 requests.
    tuner: RefCell<DotTuner>,
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))] // read by the GPU fall-back
    hooks: Hooks,
}

impl Scorer {
    /// A scorer on CPU kernel `kernel` (no GPU, nothing to await).
    pub fn cpu(kernel: CpuKernel, hooks: Hooks) -> Scorer {
        Scorer {
            backend: RefCell::new(Backend::Cpu(kernel)),
            tuner: RefCell::new(DotTuner::new(DotForm::choices())),
            hooks,
        }
    }

    /// A scorer for `plan` on `choice`. `probe` is the query `Auto` times (typically the
    /// query for one context item and no history); with `None`, `Auto` keeps a working
    /// GPU untimed. Never fails: every GPU problem ends on [`CpuKernel::best`], reported
    /// through `hooks.warn`.
    pub async fn new(
        plan: &HeadPlan,
        choice: BackendChoice,
        probe: Option<&UserQuery>,
        hooks: Hooks,
    ) -> Scorer {
        let backend = match choice {
            BackendChoice::Cpu(k) => Backend::Cpu(k),
            BackendChoice::Gpu => try_gpu(plan, &hooks).await,
            BackendChoice::Auto => fastest(plan, probe, &hooks).await,
        };
        Scorer {
            backend: RefCell::new(backend),
            tuner: RefCell::new(DotTuner::new(DotForm::choices())),
            hooks,
        }
    }

    /// The backend in use: `webgpu` (browser) or `gpu` (native), else the CPU kernel's
    /// [`CpuKernel::name`]. Changes when the GPU fails.
    pub fn name(&self) -> &'static str {
        self.backend.borrow().name()
    }

    /// Whether the GPU is in use.
    pub fn is_gpu(&self) -> bool {
        !matches!(&*self.backend.borrow(), Backend::Cpu(_))
    }

    /// The GPU adapter's description while the GPU is in use.
    pub fn adapter_info(&self) -> Option<String> {
        match &*self.backend.borrow() {
            #[cfg(feature = "gpu")]
            Backend::Gpu(g) => Some(g.adapter_info()),
            Backend::Cpu(_) => None,
        }
    }

    /// The GPU scorer while the GPU is in use (diagnostics, and tests of the fall-back
    /// through [`super::gpu::GpuScorer::destroy_device`]).
    #[cfg(feature = "gpu")]
    pub fn gpu(&self) -> Option<Rc<super::gpu::GpuScorer>> {
        match &*self.backend.borrow() {
            Backend::Gpu(g) => Some(g.clone()),
            Backend::Cpu(_) => None,
        }
    }

    /// The head's logit for every item of `plan` (the plan this scorer was built for).
    /// A GPU error or a wrong-length GPU result switches this scorer to
    /// [`CpuKernel::best`] for good (reported through `hooks.warn`) and scores there.
    ///
    /// # Errors
    /// [`ShapeError`] when `plan` or `query` have inconsistent lengths.
    #[allow(clippy::infallible_destructuring_match)] // one arm without the `gpu` feature
    pub async fn scores(&self, plan: &HeadPlan, query: &UserQuery) -> Result<Vec<f32>, ShapeError> {
        // Clone out of the cell: no borrow is held across the await.
        let backend = self.backend.borrow().clone();
        let kernel = match backend {
            #[cfg(feature = "gpu")]
            Backend::Gpu(g) => match g.scores(query).await {
                Ok(v) if v.len() == plan.n_items => return Ok(v),
                Ok(v) => self.fall_back(&format!(
                    "vitrine: GPU returned {} scores for {} items; switching to the CPU",
                    v.len(),
                    plan.n_items
                )),
                Err(e) => self.fall_back(&format!(
                    "vitrine: GPU scoring failed ({e}); switching to the CPU"
                )),
            },
            Backend::Cpu(k) => k,
        };
        let mut out = vec![0.0; plan.n_items];
        let tune = kernel != CpuKernel::Scalar && matches!(plan.item_vectors, ItemVectors::Int8(_));
        let form = if tune {
            self.tuner.borrow_mut().next_form()
        } else {
            None
        };
        if let Some(f) = form {
            f.select();
        }
        // The clock is read only while the tuner times a request.
        let t0 = form.map(|_| (self.hooks.now_ms)());
        kernel.try_scores(plan, query, &mut out)?;
        if let (Some(f), Some(t0)) = (form, t0) {
            let ms = (self.hooks.now_ms)() - t0;
            if let Some(best) = self.tuner.borrow_mut().record(f, ms) {
                best.select();
            }
        }
        Ok(out)
    }

    /// The int8 multiply form this scorer's requests chose ([`DotTuner`]); `None` while
    /// it is still timing them, or where the build has one form.
    pub fn dot_form(&self) -> Option<DotForm> {
        self.tuner.borrow().decided()
    }

    /// Uploads the catalogue's item attributes for [`Scorer::shortlist`] (the GPU only;
    /// a no-op on the CPU). A refusal is reported through `hooks.warn` and leaves the
    /// GPU scoring every item.
    pub fn set_items(&self, attrs: &ItemAttributes) {
        #[cfg(feature = "gpu")]
        if let Backend::Gpu(g) = &*self.backend.borrow() {
            if let Err(e) = g.set_items(attrs) {
                (self.hooks.warn)(&format!(
                    "vitrine: GPU shortlists unavailable ({e}); reading back every score"
                ));
            }
        }
        let _ = attrs;
    }

    /// The shortlist of `req` for `query` on the GPU, or `None` when the caller should
    /// score every item with [`Scorer::scores`] instead: on the CPU backend, when the
    /// GPU refuses the request ([`super::gpu::GpuError::Shortlist`]), or on any other
    /// GPU error, which also switches this scorer to the CPU for good (as
    /// [`Scorer::scores`]).
    pub async fn shortlist(&self, query: &UserQuery, req: &ShortlistRequest) -> Option<Shortlist> {
        let backend = self.backend.borrow().clone();
        match backend {
            #[cfg(feature = "gpu")]
            Backend::Gpu(g) => match g.shortlist(query, req).await {
                Ok(s) => Some(s),
                Err(super::gpu::GpuError::Shortlist(_)) => None,
                Err(e) => {
                    self.fall_back(&format!(
                        "vitrine: GPU shortlist failed ({e}); switching to the CPU"
                    ));
                    None
                }
            },
            Backend::Cpu(_) => {
                let _ = (query, req);
                None
            }
        }
    }

    /// Bytes read back from the GPU so far (0 on the CPU).
    pub fn bytes_read_back(&self) -> u64 {
        match &*self.backend.borrow() {
            #[cfg(feature = "gpu")]
            Backend::Gpu(g) => g.bytes_read_back(),
            Backend::Cpu(_) => 0,
        }
    }

    #[cfg(feature = "gpu")]
    fn fall_back(&self, why: &str) -> CpuKernel {
        (self.hooks.warn)(why);
        let k = CpuKernel::best();
        *self.backend.borrow_mut() = Backend::Cpu(k);
        k
    }
}

/// Calls of each form run before its timings count (V8 runs a function's first calls
/// in baseline code).
const TUNE_WARM: u32 = 2;
/// Timings kept of each form before the choice.
const TUNE_KEEP: usize = 5;
/// The second form is chosen only when its median time is below this fraction of the
/// first's (the first, [`DotForm::Fused`], is the default): no switch on a tie.
const TUNE_MARGIN: f64 = 0.97;

/// Chooses the faster of the build's [`DotForm`]s from the scorer's own first int8
/// requests: they alternate between the forms ([`DotTuner::next_form`]); each form's first
/// [`TUNE_WARM`] calls are not counted, then [`TUNE_KEEP`] timings of each are kept
/// ([`DotTuner::record`]) and the form with the lower median wins, the default
/// ([`DotForm::Fused`], the first of [`DotForm::choices`]) unless the other's median is
/// below [`TUNE_MARGIN`] of its own. About 14 requests decide it; a request costs no
/// more than in either form. With fewer than two forms there is nothing to choose.
#[derive(Debug, Clone)]
pub struct DotTuner {
    forms: [DotForm; 2],
    /// Calls run in each form.
    runs: [u32; 2],
    /// Counted timings (ms) of each form.
    kept: [Vec<f64>; 2],
    /// The next form's index in `forms`.
    turn: usize,
    decided: Option<DotForm>,
    /// Whether there are two forms to choose from.
    active: bool,
}

impl DotTuner {
    /// A tuner over `forms` ([`DotForm::choices`]); inactive unless there are two.
    pub fn new(forms: &[DotForm]) -> DotTuner {
        let (a, b) = match forms {
            [a, b] => (*a, *b),
            _ => (DotForm::Fused, DotForm::Split),
        };
        DotTuner {
            forms: [a, b],
            runs: [0; 2],
            kept: [Vec::new(), Vec::new()],
            turn: 0,
            decided: None,
            active: forms.len() == 2,
        }
    }

    /// The form the next int8 request runs in while timing; `None` once decided or
    /// where there is nothing to choose.
    pub fn next_form(&mut self) -> Option<DotForm> {
        if !self.active || self.decided.is_some() {
            return None;
        }
        let form = self.forms[self.turn];
        self.turn = 1 - self.turn;
        Some(form)
    }

    /// Records that a request run in `form` took `ms`. Returns the chosen form when this
    /// timing completes the choice (the caller selects it), else `None`. A timing that
    /// is not a finite, non-negative number is not counted.
    pub fn record(&mut self, form: DotForm, ms: f64) -> Option<DotForm> {
        if !self.active || self.decided.is_some() {
            return None;
        }
        let i = self.forms.iter().position(|&f| f == form)?;
        self.runs[i] += 1;
        if self.runs[i] > TUNE_WARM && ms.is_finite() && ms >= 0.0 && self.kept[i].len() < TUNE_KEEP
        {
            self.kept[i].push(ms);
        }
        if self.kept.iter().any(|k| k.len() < TUNE_KEEP) {
            return None;
        }
        let [m0, m1] = [median(&self.kept[0]), median(&self.kept[1])];
        let best = if m1 < TUNE_MARGIN * m0 {
            self.forms[1]
        } else {
            self.forms[0]
        };
        self.decided = Some(best);
        Some(best)
    }

    /// The chosen form, once chosen.
    pub fn decided(&self) -> Option<DotForm> {
        self.decided
    }
}

/// The median of a non-empty list of numbers (the upper one of an even count): the
/// value with at most `n / 2` values below it and at most `n - 1 - n / 2` above. By
/// counting, not sorting (five timings; no sort instance in the wasm package for it).
fn median(xs: &[f64]) -> f64 {
    let n = xs.len();
    let fits = |x: f64| {
        let below = xs.iter().filter(|&&y| y < x).count();
        let above = xs.iter().filter(|&&y| y > x).count();
        below <= n / 2 && above < n - n / 2
    };
    xs.iter().copied().find(|&x| fits(x)).unwrap_or(f64::NAN)
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "gpu")]
            Backend::Gpu(_) => {
                if cfg!(target_arch = "wasm32") {
                    "webgpu"
                } else {
                    "gpu"
                }
            }
            Backend::Cpu(k) => k.name(),
        }
    }
}

/// The GPU when an adapter and device can be had, else [`CpuKernel::best`].
async fn try_gpu(plan: &HeadPlan, hooks: &Hooks) -> Backend {
    #[cfg(feature = "gpu")]
    if (hooks.gpu_present)() {
        match super::gpu::GpuScorer::new(plan).await {
            Ok(g) => return Backend::Gpu(Rc::new(g)),
            Err(e) => (hooks.warn)(&format!("vitrine: WebGPU unavailable ({e}); using the CPU")),
        }
    }
    let _ = (plan, hooks);
    Backend::Cpu(CpuKernel::best())
}

/// `Auto`: the GPU when one warm pass on `probe` is no slower than the best CPU kernel's.
async fn fastest(plan: &HeadPlan, probe: Option<&UserQuery>, hooks: &Hooks) -> Backend {
    let gpu = try_gpu(plan, hooks).await;
    #[cfg(feature = "gpu")]
    if let Backend::Gpu(g) = &gpu {
        let cpu = CpuKernel::best();
        let Some(q) = probe else {
            return gpu;
        };
        if g.scores(q).await.is_err() {
            (hooks.warn)("vitrine: WebGPU scoring failed at load; using the CPU");
            return Backend::Cpu(cpu);
        }
        let t0 = (hooks.now_ms)();
        let ok = g.scores(q).await.is_ok();
        let gpu_ms = (hooks.now_ms)() - t0;
        let mut out = vec![0.0; plan.n_items];
        let t1 = (hooks.now_ms)();
        // The probe's shapes are the GPU's, which just accepted them.
        let _ = cpu.try_scores(plan, q, &mut out);
        let cpu_ms = (hooks.now_ms)() - t1;
        if !ok || gpu_ms > cpu_ms {
            (hooks.info)(&format!(
                "vitrine: backend auto: {} ({cpu_ms:.1} ms) is faster than WebGPU ({gpu_ms:.1} ms) here",
                cpu.name()
            ));
            return Backend::Cpu(cpu);
        }
    }
    let _ = probe;
    gpu
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// A small random plan (`n` items, `d = 8`, `h = 6`, one further layer of 4) and query.
    fn case(n: usize, seed: u64) -> (HeadPlan, UserQuery) {
        let mut rng = SplitMix64::new(seed);
        let mut v = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.next_f32() - 0.5).collect() };
        let (d, h, l) = (8, 6, 4);
        let plan = HeadPlan {
            n_items: n,
            dim: d,
            hidden: h,
            item_vectors: v(n * d).into(),
            layers: vec![(v(h * l), v(l))],
            w_out: v(l),
            b_out: 0.25,
            gpu_f16: false,
        };
        let query = UserQuery {
            m: v(d * (h + 1)),
            a: v(h),
        };
        (plan, query)
    }

    fn silent() -> Hooks {
        Hooks {
            warn: |_| {},
            info: |_| {},
            ..Hooks::native()
        }
    }

    fn reference(plan: &HeadPlan, q: &UserQuery) -> Vec<f32> {
        let mut out = vec![0.0; plan.n_items];
        CpuKernel::Scalar.scores(plan, q, &mut out);
        out
    }

    #[test]
    fn cpu_scorer_is_the_kernel_bit_for_bit() {
        let (plan, q) = case(37, 3);
        for k in [CpuKernel::Scalar, CpuKernel::best()] {
            let s = Scorer::cpu(k, silent());
            assert_eq!(s.name(), k.name());
            assert!(!s.is_gpu() && s.adapter_info().is_none());
            let got = pollster::block_on(s.scores(&plan, &q)).unwrap();
            let mut want = vec![0.0; plan.n_items];
            k.scores(&plan, &q, &mut want);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn shape_errors_are_returned_not_panicked() {
        let (plan, mut q) = case(5, 4);
        q.a.pop();
        let s = Scorer::cpu(CpuKernel::Scalar, silent());
        let err = pollster::block_on(s.scores(&plan, &q)).unwrap_err();
        assert!(matches!(err, ShapeError::Length { .. }), "{err}");
    }

    /// Whatever this machine has (a GPU, lavapipe, or none: fall-back), `Gpu` and `Auto`
    /// end on a working backend that matches the scalar reference.
    #[test]
    fn gpu_and_auto_score_like_the_reference_or_fall_back() {
        let (plan, q) = case(300, 5);
        let want = reference(&plan, &q);
        for choice in [BackendChoice::Gpu, BackendChoice::Auto] {
            let s = pollster::block_on(Scorer::new(&plan, choice, Some(&q), silent()));
            let got = pollster::block_on(s.scores(&plan, &q)).unwrap();
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() < 1e-4,
                    "{choice:?}/{}: item {i}: {g} vs {w}",
                    s.name()
                );
            }
            if s.is_gpu() {
                assert!(s.adapter_info().is_some());
            } else {
                assert_eq!(s.name(), CpuKernel::best().name());
            }
        }
    }

    /// A GPU scorer whose results do not fit the plan it is asked about switches to the
    /// CPU for good (the fall-back path), and reports it.
    #[cfg(feature = "gpu")]
    #[test]
    fn a_failing_gpu_falls_back_to_the_cpu_for_good() {
        static WARNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let (small, q) = case(40, 6);
        let (big, _) = case(50, 7);
        let hooks = Hooks {
            warn: |_| {
                WARNED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            },
            ..silent()
        };
        let s = pollster::block_on(Scorer::new(&small, BackendChoice::Gpu, None, hooks));
        if !s.is_gpu() {
            // No adapter here: construction itself fell back, which it must report.
            assert_eq!(WARNED.load(std::sync::atomic::Ordering::SeqCst), 1);
            assert_eq!(s.name(), CpuKernel::best().name());
            return;
        }
        // Same widths, more items: the GPU returns 40 logits for a 50-item plan.
        let got = pollster::block_on(s.scores(&big, &q)).unwrap();
        assert!(!s.is_gpu(), "still on the GPU after a wrong-length result");
        assert_eq!(WARNED.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(got, {
            let mut out = vec![0.0; big.n_items];
            CpuKernel::best().scores(&big, &q, &mut out);
            out
        });
    }

    /// Feeds `tuner` alternating timings, as `Scorer::scores` does: each call runs the
    /// form `next_form()` hands out and records `time(form, call of that form)`. Returns the
    /// record call (1-based) that decided, and the decision.
    fn run_tuner(
        tuner: &mut DotTuner,
        calls: usize,
        time: impl Fn(DotForm, u32) -> f64,
    ) -> Option<(usize, DotForm)> {
        let mut seen = [0u32; 2];
        for call in 1..=calls {
            let form = tuner.next_form()?;
            let i = usize::from(form == DotForm::Split);
            seen[i] += 1;
            if let Some(best) = tuner.record(form, time(form, seen[i])) {
                assert_eq!(tuner.decided(), Some(best));
                assert_eq!(tuner.next_form(), None, "no more timing once decided");
                return Some((call, best));
            }
            assert_eq!(tuner.decided(), None);
        }
        None
    }

    const BOTH: [DotForm; 2] = [DotForm::Fused, DotForm::Split];

    #[test]
    fn the_tuner_keeps_the_faster_form_after_its_warm_up_calls() {
        // Split is faster once warm; its first two calls (baseline code) are the slowest
        // of all and must not count.
        let mut t = DotTuner::new(&BOTH);
        let split_wins = |f: DotForm, nth: u32| match (f, nth) {
            (DotForm::Split, 1 | 2) => 100.0,
            (DotForm::Split, _) => 8.0,
            (DotForm::Fused, _) => 10.0,
        };
        let want = 2 * (TUNE_WARM as usize + TUNE_KEEP);
        assert_eq!(
            run_tuner(&mut t, 40, split_wins),
            Some((want, DotForm::Split))
        );
        // The forms alternate from the default.
        let mut t = DotTuner::new(&BOTH);
        assert_eq!(t.next_form(), Some(DotForm::Fused));
        assert_eq!(t.next_form(), Some(DotForm::Split));
        assert_eq!(t.next_form(), Some(DotForm::Fused));
        // Fused faster: fused.
        let mut t = DotTuner::new(&BOTH);
        let fused_wins = |f: DotForm, _: u32| if f == DotForm::Fused { 6.0 } else { 9.0 };
        assert_eq!(
            run_tuner(&mut t, 40, fused_wins),
            Some((want, DotForm::Fused))
        );
    }

    #[test]
    fn the_tuner_switches_only_past_its_margin() {
        for (split_ms, want) in [
            (10.0, DotForm::Fused),
            (9.8, DotForm::Fused),
            (9.6, DotForm::Split),
        ] {
            let mut t = DotTuner::new(&BOTH);
            let time = |f: DotForm, _: u32| if f == DotForm::Fused { 10.0 } else { split_ms };
            assert_eq!(
                run_tuner(&mut t, 40, time).map(|d| d.1),
                Some(want),
                "{split_ms}"
            );
        }
        // Medians, not means: one slow outlier of the faster form does not flip it.
        let mut t = DotTuner::new(&BOTH);
        let time = |f: DotForm, nth: u32| match (f, nth) {
            (DotForm::Split, 5) => 50.0,
            (DotForm::Split, _) => 8.0,
            (DotForm::Fused, _) => 10.0,
        };
        assert_eq!(
            run_tuner(&mut t, 40, time).map(|d| d.1),
            Some(DotForm::Split)
        );
    }

    #[test]
    fn the_tuner_counts_only_usable_timings_and_idles_without_a_choice() {
        // A NaN or negative timing is not counted: the decision waits for usable ones.
        let mut t = DotTuner::new(&BOTH);
        let time = |f: DotForm, nth: u32| match (f, nth) {
            (DotForm::Split, 3) => f64::NAN,
            (DotForm::Split, 4) => -1.0,
            (DotForm::Split, _) => 8.0,
            (DotForm::Fused, _) => 10.0,
        };
        // (Split's two lost timings take two more calls of it, and the forms alternate.)
        let want = 2 * (TUNE_WARM as usize + TUNE_KEEP + 2);
        assert_eq!(run_tuner(&mut t, 40, time), Some((want, DotForm::Split)));
        // One form or none (every build but the relaxed one): nothing to time.
        for forms in [&[][..], &[DotForm::Fused][..]] {
            let mut t = DotTuner::new(forms);
            assert_eq!(t.next_form(), None);
            assert_eq!(t.record(DotForm::Split, 1.0), None);
            assert_eq!(t.decided(), None);
        }
        // This build's choices: two only in the relaxed-SIMD wasm build.
        assert_eq!(
            DotForm::choices().len(),
            if cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) {
                2
            } else {
                0
            }
        );
    }

    #[test]
    fn median_is_the_middle_value_ties_included() {
        assert_eq!(median(&[5.0, 1.0, 3.0, 2.0, 4.0]), 3.0);
        assert_eq!(median(&[2.0, 2.0, 9.0, 2.0, 1.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        assert_eq!(median(&[7.0]), 7.0);
    }
}
