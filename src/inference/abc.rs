//! ABC-SMC (population Monte Carlo: Beaumont et al. 2009; adaptive tolerances as Del Moral et al. 2012 and
//! pyABC): generic over the simulator, which is a callback from a batch of candidates to their summaries.
//!
//! Everything happens in the priors' Gaussian copula space (`prior.rs`), where the prior is N(0, I):
//! - generation 0 draws `particles` candidates from the prior and accepts every one that has summaries;
//! - generation t ≥ 1 rescales each summary by its spread in generation t − 1 (the normalised median absolute
//!   deviation of everything simulated there, combined with the data's own standard error: `σ_i² = MAD_i² +
//!   se_i²`), sets the tolerance to the weighted `alpha`-quantile of generation t − 1's distances under the new
//!   scales, and proposes from generation t − 1: an ancestor drawn by weight, moved by a normal kernel whose
//!   covariance is twice the weighted covariance (shrunk towards its diagonal by p/(p + N), so that it stays
//!   positive definite when particles are few against parameters); a candidate is accepted when its
//!   distance `sqrt(mean_i ((s_i − o_i)/σ_i)²)` over the fitted summaries is at most the tolerance;
//! - weights are prior / Σ_j W_j K(z | z_j), normalised.
//!
//! Candidates are evaluated in batches of a size that depends only on the particle count and the previous
//! generation's acceptance rate, and accepted in index order until `particles` are accepted, so the result
//! is the same whatever the parallelism of the evaluator. Candidate `i` of generation `t` is a function of
//! (seed, t, i) and the previous generation alone, so an evaluator that remembers finished candidates (a
//! checkpoint) makes a resumed calibration repeat the same bytes.

use crate::model::rng::{CounterRng, mix64};
use nalgebra::{DMatrix, DVector};

/// How generations after the first are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampler {
    /// Population Monte Carlo (Beaumont et al. 2009): proposals from a kernel around the previous
    /// generation, importance weights prior / Σ W_j K. Its weights degenerate when parameters are many
    /// against particles.
    Pmc,
    /// MCMC moves (Del Moral et al. 2012; the replenishment form of Drovandi & Pettitt 2011): the better
    /// `alpha` share of the previous generation is kept, the rest resampled from it and moved by
    /// Metropolis–Hastings steps that target the ABC posterior at the new tolerance; weights stay equal, so
    /// it works with many parameters.
    Mcmc,
}

impl std::str::FromStr for Sampler {
    type Err = String;
    fn from_str(s: &str) -> Result<Sampler, String> {
        match s {
            "pmc" => Ok(Sampler::Pmc),
            "mcmc" => Ok(Sampler::Mcmc),
            _ => Err(format!("expected pmc or mcmc, got {s:?}")),
        }
    }
}

/// The settings of a calibration.
#[derive(Clone, Debug)]
pub struct AbcOptions {
    pub sampler: Sampler,
    /// Accepted particles per generation.
    pub particles: usize,
    /// The most generations, counting generation 0 (the prior).
    pub generations: usize,
    /// Stop after a generation whose acceptance rate is below this (0: never).
    pub min_acceptance: f64,
    /// The quantile of the previous generation's distances that becomes the next tolerance.
    pub alpha: f64,
    pub seed: u64,
    /// A generation gives up after this many candidates (the calibration then ends with the generation
    /// before).
    pub max_candidates: u64,
}

impl Default for AbcOptions {
    fn default() -> AbcOptions {
        AbcOptions {
            sampler: Sampler::Pmc,
            particles: 100,
            generations: 5,
            min_acceptance: 0.0,
            alpha: 0.5,
            seed: 1,
            max_candidates: 0,
        }
    }
}

impl AbcOptions {
    fn candidate_cap(&self) -> u64 {
        if self.max_candidates > 0 { self.max_candidates } else { 50 * self.particles as u64 }
    }
}

/// Each candidate's summaries (`None`: it failed).
pub type Summaries = Vec<Option<Vec<f64>>>;

/// The simulator: a batch of candidates to their summaries.
pub type Evaluate<'a, E> = dyn FnMut(&[Candidate]) -> Result<Summaries, E> + 'a;

/// One candidate: generation, index within the generation, and its point in copula space.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub generation: u32,
    pub index: u64,
    pub z: Vec<f64>,
}

/// An accepted particle.
#[derive(Clone, Debug, PartialEq)]
pub struct Particle {
    /// The generation and index of the candidate it is (an MCMC generation keeps particles of earlier ones).
    pub born: u32,
    pub index: u64,
    pub z: Vec<f64>,
    /// Normalised importance weight.
    pub weight: f64,
    pub distance: f64,
    /// Its summaries (every target, fitted or not).
    pub summary: Vec<f64>,
}

/// One finished generation.
#[derive(Clone, Debug)]
pub struct Population {
    pub generation: u32,
    /// Infinity for generation 0.
    pub tolerance: f64,
    /// The scale σ_i of each summary in this generation's distance.
    pub scales: Vec<f64>,
    /// The spread of every summary simulated in this generation (accepted or not): the next generation's
    /// scales.
    pub spread: Vec<f64>,
    pub particles: Vec<Particle>,
    /// Candidates evaluated (including those of the last batch after the last acceptance).
    pub evaluated: u64,
    /// Candidates up to and including the last accepted one.
    pub proposed: u64,
    pub acceptance: f64,
    /// Effective sample size 1/Σw² (PMC); the number of distinct particles (MCMC, whose weights are equal).
    pub ess: f64,
    /// MCMC: Metropolis–Hastings steps per moved particle (0 for PMC).
    pub mcmc_steps: u32,
    /// MCMC: the Crank–Nicolson step size β of the steps after the trial (0 for PMC).
    pub mcmc_beta: f64,
}

/// How a calibration ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Ending {
    /// It ran the generations asked for.
    Generations,
    /// A generation's acceptance rate fell below `min_acceptance`.
    MinAcceptance,
    /// Generation `t` reached `max_candidates` without `particles` acceptances; it is not kept.
    CandidateCap(u32),
}

/// The data: each summary's observed value, its standard error on the summary's scale, and whether it
/// is fitted (a summary that is not is only predicted: the hold-out check).
#[derive(Clone, Debug)]
pub struct Observed {
    pub values: Vec<f64>,
    pub se: Vec<f64>,
    pub fit: Vec<bool>,
}

impl Observed {
    /// The distance of summaries `s` under scales `scales` (infinity when a fitted summary is not finite).
    pub fn distance(&self, s: &[f64], scales: &[f64]) -> f64 {
        let mut sum = 0.0;
        let mut n = 0;
        for i in 0..self.values.len() {
            if !self.fit[i] {
                continue;
            }
            let d = (s[i] - self.values[i]) / scales[i];
            if !d.is_finite() {
                return f64::INFINITY;
            }
            sum += d * d;
            n += 1;
        }
        if n == 0 { f64::INFINITY } else { (sum / n as f64).sqrt() }
    }

    /// Each summary's scale from the summaries simulated in a generation: the normalised MAD combined with
    /// the data's standard error.
    pub fn scales(&self, simulated: &[&[f64]]) -> Vec<f64> {
        (0..self.values.len())
            .map(|i| {
                let mut v: Vec<f64> = simulated.iter().map(|s| s[i]).filter(|x| x.is_finite()).collect();
                let mad = if v.len() < 2 {
                    0.0
                } else {
                    let m = median(&mut v);
                    let mut dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
                    1.4826 * median(&mut dev)
                };
                (mad * mad + self.se[i] * self.se[i]).sqrt().max(1e-12)
            })
            .collect()
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// The weighted `q`-quantile (the smallest value whose cumulative weight reaches q).
pub fn weighted_quantile(values: &[f64], weights: &[f64], q: f64) -> f64 {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|a, b| values[*a].total_cmp(&values[*b]));
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    for i in &idx {
        acc += weights[*i];
        if acc >= q * total - 1e-12 {
            return values[*i];
        }
    }
    idx.last().map_or(f64::NAN, |i| values[*i])
}

/// The perturbation kernel fitted to a population.
struct Kernel {
    /// The population's weighted mean.
    mean: DVector<f64>,
    /// Lower Cholesky factor of the kernel covariance.
    l: DMatrix<f64>,
    /// The population's particles whitened by `l` (rows).
    whitened: Vec<DVector<f64>>,
    weights: Vec<f64>,
}

impl Kernel {
    /// `factor` × the population's weighted covariance, shrunk towards its diagonal.
    fn fit(pop: &Population, factor: f64) -> Kernel {
        let p = pop.particles.first().map_or(0, |x| x.z.len());
        let n = pop.particles.len();
        let mut mean = DVector::zeros(p);
        for x in &pop.particles {
            mean += DVector::from_column_slice(&x.z) * x.weight;
        }
        let mut cov = DMatrix::zeros(p, p);
        for x in &pop.particles {
            let d = DVector::from_column_slice(&x.z) - &mean;
            cov += &d * d.transpose() * x.weight;
        }
        let lambda = p as f64 / (p + n) as f64;
        let mut k = cov.scale(1.0 - lambda);
        for i in 0..p {
            k[(i, i)] += lambda * cov[(i, i)];
            // A parameter every particle agrees on keeps a small spread (a tenth of the prior's).
            k[(i, i)] = k[(i, i)].max(1e-2);
        }
        k *= factor;
        let l = nalgebra::Cholesky::new(k.clone())
            .or_else(|| {
                let mut j = k.clone();
                for i in 0..p {
                    j[(i, i)] += 1e-6;
                }
                nalgebra::Cholesky::new(j)
            })
            .map(|c| c.l())
            .unwrap_or_else(|| DMatrix::identity(p, p));
        let whitened = pop
            .particles
            .iter()
            .map(|x| l.solve_lower_triangular(&DVector::from_column_slice(&x.z)).unwrap_or_else(|| DVector::zeros(p)))
            .collect();
        Kernel { mean, l, whitened, weights: pop.particles.iter().map(|x| x.weight).collect() }
    }

    /// ln Σ_j W_j K(z | z_j), up to a constant shared by every z.
    fn ln_mixture(&self, z: &[f64]) -> f64 {
        let y =
            self.l.solve_lower_triangular(&DVector::from_column_slice(z)).unwrap_or_else(|| DVector::zeros(z.len()));
        let terms: Vec<f64> =
            self.whitened.iter().zip(&self.weights).map(|(w, wt)| wt.ln() - 0.5 * (&y - w).norm_squared()).collect();
        log_sum_exp(&terms)
    }
}

fn log_sum_exp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// The keyed generator of candidate `index` of generation `generation`.
fn rng(seed: u64, generation: u32, index: u64) -> CounterRng {
    CounterRng::new(mix64(seed ^ 0x4142_4353_4D43 ^ mix64(generation as u64 + 1)), index)
}

/// Candidate `index` of generation 0: a draw from the prior.
pub fn prior_candidate(seed: u64, dims: usize, index: u64) -> Candidate {
    let mut r = rng(seed, 0, index);
    Candidate { generation: 0, index, z: (0..dims).map(|_| r.normal()).collect() }
}

/// Candidate `index` of generation `generation` ≥ 1, proposed from the previous population.
fn proposal(seed: u64, generation: u32, index: u64, prev: &Population, kernel: &Kernel) -> Candidate {
    let mut r = rng(seed, generation, index);
    let u = r.uniform();
    let mut acc = 0.0;
    let mut j = prev.particles.len() - 1;
    for (k, x) in prev.particles.iter().enumerate() {
        acc += x.weight;
        if u < acc {
            j = k;
            break;
        }
    }
    let p = prev.particles[j].z.len();
    let n = DVector::from_iterator(p, (0..p).map(|_| r.normal()));
    let z = DVector::from_column_slice(&prev.particles[j].z) + &kernel.l * n;
    Candidate { generation, index, z: z.iter().copied().collect() }
}

/// Runs ABC-SMC. `evaluate(batch)` returns each candidate's summaries (`None`: it failed, e.g. every run of
/// it); `on_generation` sees each finished generation. Returns the finished generations and how it ended.
pub fn run<E>(
    opts: &AbcOptions,
    dims: usize,
    observed: &Observed,
    evaluate: &mut Evaluate<'_, E>,
    on_generation: &mut dyn FnMut(&Population) -> Result<(), E>,
) -> Result<(Vec<Population>, Ending), E> {
    let n = opts.particles.max(1);
    let cap = opts.candidate_cap();
    let mut pops: Vec<Population> = Vec::new();
    let mut beta = 0.5;
    for t in 0..opts.generations.max(1) as u32 {
        let prev = pops.last();
        if let (Sampler::Mcmc, Some(prev)) = (opts.sampler, prev) {
            let pop = mcmc_generation(opts, t, prev, observed, evaluate, &mut beta)?;
            on_generation(&pop)?;
            let low = pop.acceptance < opts.min_acceptance;
            pops.push(pop);
            if low {
                return Ok((pops, Ending::MinAcceptance));
            }
            continue;
        }
        let kernel = prev.map(|p| Kernel::fit(p, 2.0));
        // Scales and tolerance of this generation, from everything simulated in the previous one.
        let (scales, tolerance) = match prev {
            None => (None, f64::INFINITY),
            Some(p) => {
                let scales = p.spread.clone();
                let d: Vec<f64> = p.particles.iter().map(|x| observed.distance(&x.summary, &scales)).collect();
                let w: Vec<f64> = p.particles.iter().map(|x| x.weight).collect();
                (Some(scales), weighted_quantile(&d, &w, opts.alpha))
            }
        };
        let batch = match prev {
            None => n as u64,
            Some(p) => ((n as f64 / p.acceptance.max(1e-3) * 1.2).ceil() as u64).clamp(n as u64, 10 * n as u64),
        };
        let mut accepted: Vec<(u64, Vec<f64>, Vec<f64>)> = Vec::new();
        let mut all: Vec<Vec<f64>> = Vec::new();
        let mut evaluated = 0u64;
        let mut proposed = 0u64;
        while accepted.len() < n && evaluated < cap {
            let size = batch.min(cap - evaluated);
            let cands: Vec<Candidate> = (evaluated..evaluated + size)
                .map(|i| match (prev, &kernel) {
                    (Some(p), Some(k)) => proposal(opts.seed, t, i, p, k),
                    _ => prior_candidate(opts.seed, dims, i),
                })
                .collect();
            let results = evaluate(&cands)?;
            evaluated += size;
            for (c, s) in cands.into_iter().zip(results) {
                let Some(s) = s else { continue };
                if accepted.len() >= n {
                    continue;
                }
                let ok = match &scales {
                    None => observed.distance(&s, &vec![1.0; s.len()]).is_finite(),
                    Some(sc) => observed.distance(&s, sc) <= tolerance,
                };
                all.push(s.clone());
                if ok {
                    accepted.push((c.index, c.z, s));
                    proposed = c.index + 1;
                }
            }
        }
        if accepted.len() < n {
            return Ok((pops, Ending::CandidateCap(t)));
        }
        let spread = observed.scales(&all.iter().map(Vec::as_slice).collect::<Vec<_>>());
        // Generation 0's distances use its own spread (as pyABC's first population).
        let scales = scales.unwrap_or_else(|| spread.clone());
        let raw: Vec<f64> = accepted
            .iter()
            .map(|(_, z, _)| match &kernel {
                None => 0.0,
                Some(k) => -0.5 * z.iter().map(|v| v * v).sum::<f64>() - k.ln_mixture(z),
            })
            .collect();
        let m = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = raw.iter().map(|r| (r - m).exp()).collect();
        let total: f64 = w.iter().sum();
        let particles: Vec<Particle> = accepted
            .into_iter()
            .zip(&w)
            .map(|((index, z, summary), w)| Particle {
                born: t,
                index,
                weight: w / total,
                distance: observed.distance(&summary, &scales),
                z,
                summary,
            })
            .collect();
        let ess = 1.0 / particles.iter().map(|p| p.weight * p.weight).sum::<f64>();
        let pop = Population {
            generation: t,
            tolerance,
            scales,
            spread,
            particles,
            evaluated,
            proposed,
            acceptance: n as f64 / proposed.max(1) as f64,
            ess,
            mcmc_steps: 0,
            mcmc_beta: 0.0,
        };
        on_generation(&pop)?;
        let low = t > 0 && pop.acceptance < opts.min_acceptance;
        pops.push(pop);
        if low {
            return Ok((pops, Ending::MinAcceptance));
        }
    }
    Ok((pops, Ending::Generations))
}

/// One MCMC generation: keep the best `alpha` share of `prev` under the new scales (the tolerance is the
/// largest kept distance), resample the rest from the kept particles and move each by Metropolis–Hastings
/// steps that target the prior restricted to distances within the tolerance. The proposal is a
/// preconditioned Crank–Nicolson step around g = N(μ, Σ), the kept particles' mean and (shrunk) covariance:
/// z' = μ + √(1 − β²)(z − μ) + β·L·ξ, reversible with respect to g, so the acceptance ratio is
/// [π(z')/g(z')] / [π(z)/g(z)] with π the N(0, I) prior; parameters the data do not inform keep g ≈ π and
/// move freely however many they are. Step 0 is a trial: its acceptance rate p halves β for the later steps
/// when below 15% (and raises it by half, at most 1, when above 50%), and sets their number
/// R = ⌈ln 0.01 / ln(1 − p)⌉ (at most 30), so that a particle stays unmoved with probability about 1%.
fn mcmc_generation<E>(
    opts: &AbcOptions,
    t: u32,
    prev: &Population,
    observed: &Observed,
    evaluate: &mut Evaluate<'_, E>,
    beta: &mut f64,
) -> Result<Population, E> {
    let n = prev.particles.len();
    let scales = prev.spread.clone();
    let d: Vec<f64> = prev.particles.iter().map(|x| observed.distance(&x.summary, &scales)).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| d[*a].total_cmp(&d[*b]).then(a.cmp(b)));
    let n_keep = ((opts.alpha * n as f64).ceil() as usize).clamp(1, n);
    let tolerance = d[order[n_keep - 1]];
    let equal = 1.0 / n_keep as f64;
    let kept: Vec<Particle> = order[..n_keep]
        .iter()
        .map(|i| Particle { weight: equal, distance: d[*i], ..prev.particles[*i].clone() })
        .collect();
    let g = Kernel::fit(&Population { particles: kept.clone(), ..prev.clone() }, 1.0);
    // ln π(z) − ln g(z), up to a constant.
    let ln_ratio = |z: &[f64]| {
        let v = DVector::from_column_slice(z);
        let w = g.l.solve_lower_triangular(&(&v - &g.mean)).unwrap_or_else(|| DVector::zeros(z.len()));
        -0.5 * v.norm_squared() + 0.5 * w.norm_squared()
    };
    let mut slots = kept.clone();
    let mut r = rng(opts.seed, t, u64::MAX);
    for _ in n_keep..n {
        slots.push(kept[(r.draw() % n_keep as u64) as usize].clone());
    }
    let moving: Vec<usize> = (n_keep..n).collect();
    let mut sims: Vec<Vec<f64>> = Vec::new();
    let (mut proposed, mut accepted) = (0u64, 0u64);
    let mut steps = if moving.is_empty() { 0 } else { 1u32 };
    let mut step = 0u32;
    while step < steps {
        let b = *beta;
        let cands: Vec<(Candidate, f64)> = moving
            .iter()
            .map(|s| {
                let index = step as u64 * n as u64 + *s as u64;
                let mut r = rng(opts.seed, t, index);
                let p = slots[*s].z.len();
                let xi = DVector::from_iterator(p, (0..p).map(|_| r.normal()));
                let z = &g.mean
                    + (DVector::from_column_slice(&slots[*s].z) - &g.mean) * (1.0 - b * b).sqrt()
                    + &g.l * xi * b;
                (Candidate { generation: t, index, z: z.iter().copied().collect() }, r.uniform())
            })
            .collect();
        let batch: Vec<Candidate> = cands.iter().map(|c| c.0.clone()).collect();
        let results = evaluate(&batch)?;
        let mut step_accepted = 0u64;
        for ((s, (c, u)), res) in moving.iter().zip(cands).zip(results) {
            proposed += 1;
            let Some(summary) = res else { continue };
            let dist = observed.distance(&summary, &scales);
            sims.push(summary.clone());
            if dist <= tolerance && u.ln() < ln_ratio(&c.z) - ln_ratio(&slots[*s].z) {
                slots[*s] = Particle { born: t, index: c.index, z: c.z, weight: equal, distance: dist, summary };
                step_accepted += 1;
            }
        }
        accepted += step_accepted;
        if step == 0 {
            let p = step_accepted as f64 / moving.len() as f64;
            steps = if p >= 1.0 {
                1
            } else if p <= 0.0 {
                30
            } else {
                ((0.01f64).ln() / (1.0 - p).ln()).ceil().clamp(1.0, 30.0) as u32
            };
            if p < 0.15 {
                *beta *= 0.5;
            } else if p > 0.5 {
                *beta = (*beta * 1.5).min(1.0);
            }
        }
        step += 1;
    }
    sims.extend(slots.iter().map(|p| p.summary.clone()));
    let spread = observed.scales(&sims.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let w = 1.0 / n as f64;
    let particles: Vec<Particle> = slots
        .into_iter()
        .map(|p| Particle { weight: w, distance: observed.distance(&p.summary, &scales), ..p })
        .collect();
    let distinct: std::collections::BTreeSet<(u32, u64)> = particles.iter().map(|p| (p.born, p.index)).collect();
    Ok(Population {
        generation: t,
        tolerance,
        scales,
        spread,
        particles,
        evaluated: proposed,
        proposed,
        acceptance: if proposed == 0 { 1.0 } else { accepted as f64 / proposed as f64 },
        ess: distinct.len() as f64,
        mcmc_steps: steps,
        mcmc_beta: *beta,
    })
}

/// `k` indices drawn with replacement from a population by weight, for posterior draws.
pub fn resample(pop: &Population, k: usize, seed: u64) -> Vec<usize> {
    resample_weights(&pop.particles.iter().map(|p| p.weight).collect::<Vec<_>>(), k, seed)
}

/// `k` indices drawn with replacement by `weights` (systematic resampling keyed by `seed`: each index appears
/// ⌊k·w⌋ or ⌈k·w⌉ times).
pub fn resample_weights(weights: &[f64], k: usize, seed: u64) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    let mut r = CounterRng::new(mix64(seed ^ 0x5245_5341_4D50), k as u64);
    let u0 = r.uniform() / k as f64;
    let mut out = Vec::with_capacity(k);
    let mut acc = 0.0;
    let mut j = 0;
    for i in 0..k {
        let u = u0 + i as f64 / k as f64;
        while j + 1 < weights.len() && acc + weights[j] / total < u {
            acc += weights[j] / total;
            j += 1;
        }
        out.push(j);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy simulator: summary = z + noise of sd `sigma`, keyed by the candidate.
    fn toy(sigma: f64, seed: u64) -> impl FnMut(&[Candidate]) -> Result<Vec<Option<Vec<f64>>>, ()> {
        move |batch: &[Candidate]| {
            Ok(batch
                .iter()
                .map(|c| {
                    let mut r = CounterRng::new(mix64(seed ^ c.generation as u64), c.index);
                    Some(c.z.iter().map(|z| z + sigma * r.normal()).collect())
                })
                .collect())
        }
    }

    fn weighted_mean_sd(pop: &Population, k: usize) -> (f64, f64) {
        let m: f64 = pop.particles.iter().map(|p| p.weight * p.z[k]).sum();
        let v: f64 = pop.particles.iter().map(|p| p.weight * (p.z[k] - m).powi(2)).sum();
        (m, v.sqrt())
    }

    #[test]
    fn a_normal_model_reaches_its_exact_posterior() {
        // Prior N(0, 1), s = θ + N(0, 0.5²), observed 1.0: posterior N(0.8, 0.2) (sd 0.447).
        let sigma = 0.5;
        let observed = Observed { values: vec![1.0, -0.5], se: vec![0.0, 0.0], fit: vec![true, true] };
        let opts = AbcOptions { particles: 400, generations: 7, seed: 3, ..Default::default() };
        let (pops, ending) = run(&opts, 2, &observed, &mut toy(sigma, 9), &mut |_| Ok::<(), ()>(())).unwrap();
        assert_eq!(ending, Ending::Generations);
        assert_eq!(pops.len(), 7);
        let last = pops.last().unwrap();
        let (m0, s0) = weighted_mean_sd(last, 0);
        let (m1, s1) = weighted_mean_sd(last, 1);
        let post_sd = (sigma * sigma / (1.0 + sigma * sigma)).sqrt();
        assert!((m0 - 0.8).abs() < 0.1, "{m0}");
        assert!((m1 + 0.4).abs() < 0.1, "{m1}");
        assert!((s0 - post_sd).abs() < 0.1 && (s1 - post_sd).abs() < 0.1, "{s0} {s1} vs {post_sd}");
        // Tolerances fall, weights sum to 1, the ESS is at most the particle count.
        for w in pops.windows(2) {
            assert!(w[1].tolerance <= w[0].tolerance);
        }
        for p in &pops {
            assert!((p.particles.iter().map(|x| x.weight).sum::<f64>() - 1.0).abs() < 1e-9);
            assert!(p.ess <= 400.0 + 1e-9 && p.ess > 50.0);
        }
    }

    #[test]
    fn the_mcmc_sampler_reaches_the_exact_posterior_too_and_keeps_weights_equal() {
        let sigma = 0.5;
        let observed = Observed { values: vec![1.0, -0.5], se: vec![0.0, 0.0], fit: vec![true, true] };
        let opts = AbcOptions { sampler: Sampler::Mcmc, particles: 400, generations: 7, seed: 3, ..Default::default() };
        let (pops, _) = run(&opts, 2, &observed, &mut toy(sigma, 9), &mut |_| Ok::<(), ()>(())).unwrap();
        let last = pops.last().unwrap();
        let (m0, s0) = weighted_mean_sd(last, 0);
        let (m1, s1) = weighted_mean_sd(last, 1);
        let post_sd = (sigma * sigma / (1.0 + sigma * sigma)).sqrt();
        assert!((m0 - 0.8).abs() < 0.1 && (m1 + 0.4).abs() < 0.1, "{m0} {m1}");
        assert!((s0 - post_sd).abs() < 0.1 && (s1 - post_sd).abs() < 0.1, "{s0} {s1} vs {post_sd}");
        for w in pops.windows(2) {
            assert!(w[1].tolerance <= w[0].tolerance);
        }
        assert!(last.particles.iter().all(|p| (p.weight - 1.0 / 400.0).abs() < 1e-15));
        assert!(last.ess > 200.0, "distinct particles {}", last.ess);
    }

    #[test]
    fn with_many_unidentified_parameters_mcmc_keeps_their_prior_and_pmc_weights_collapse() {
        // 40 parameters, only the first is informed by the data: the others should keep N(0, 1).
        let dims = 40;
        let mut values = vec![0.0; dims];
        values[0] = 1.0;
        let observed = Observed { values, se: vec![0.0; dims], fit: (0..dims).map(|i| i == 0).collect() };
        let mcmc = AbcOptions { sampler: Sampler::Mcmc, particles: 200, generations: 5, seed: 8, ..Default::default() };
        let (pops, _) = run(&mcmc, dims, &observed, &mut toy(0.5, 2), &mut |_| Ok::<(), ()>(())).unwrap();
        let last = pops.last().unwrap();
        let sds: Vec<f64> = (1..dims).map(|k| weighted_mean_sd(last, k).1).collect();
        let mean_sd = sds.iter().sum::<f64>() / sds.len() as f64;
        assert!((mean_sd - 1.0).abs() < 0.15, "unidentified parameters' sd {mean_sd}");
        assert!(weighted_mean_sd(last, 0).1 < 0.7);
        let pmc = AbcOptions { sampler: Sampler::Pmc, ..mcmc };
        let (pops, _) = run(&pmc, dims, &observed, &mut toy(0.5, 2), &mut |_| Ok::<(), ()>(())).unwrap();
        assert!(pops.last().unwrap().ess < 20.0, "PMC's ESS {}", pops.last().unwrap().ess);
    }

    #[test]
    fn batching_does_not_change_the_result() {
        // The same calibration whether the evaluator sees whole batches or one candidate at a time.
        let observed = Observed { values: vec![0.3], se: vec![0.1], fit: vec![true] };
        let opts = AbcOptions { particles: 50, generations: 3, seed: 5, ..Default::default() };
        let (a, _) = run(&opts, 1, &observed, &mut toy(0.3, 1), &mut |_| Ok::<(), ()>(())).unwrap();
        let mut inner = toy(0.3, 1);
        let mut one_by_one = |b: &[Candidate]| -> Result<Vec<Option<Vec<f64>>>, ()> {
            let mut out = Vec::new();
            for c in b {
                out.extend(inner(std::slice::from_ref(c))?);
            }
            Ok(out)
        };
        let (b, _) = run(&opts, 1, &observed, &mut one_by_one, &mut |_| Ok::<(), ()>(())).unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.particles, y.particles);
        }
    }

    #[test]
    fn unfitted_summaries_do_not_move_the_posterior_and_failures_are_rejected() {
        let observed = Observed { values: vec![1.0, 5.0], se: vec![0.0, 0.0], fit: vec![true, false] };
        let opts = AbcOptions { particles: 200, generations: 5, seed: 2, ..Default::default() };
        let mut sim = toy(0.5, 4);
        let mut flaky = |b: &[Candidate]| -> Result<Vec<Option<Vec<f64>>>, ()> {
            let r = sim(b)?;
            Ok(r.into_iter().zip(b).map(|(s, c)| if c.index % 7 == 3 { None } else { s }).collect())
        };
        let (pops, _) = run(&opts, 2, &observed, &mut flaky, &mut |_| Ok::<(), ()>(())).unwrap();
        let last = pops.last().unwrap();
        // θ2 is not fitted: it keeps its prior (mean 0, sd 1).
        let (m1, s1) = weighted_mean_sd(last, 1);
        assert!(m1.abs() < 0.25 && (s1 - 1.0).abs() < 0.25, "{m1} {s1}");
        assert!(last.particles.iter().all(|p| p.index % 7 != 3));
    }

    #[test]
    fn simulation_based_calibration_of_the_toy_model_covers_at_the_nominal_rate() {
        // 40 data sets from true values drawn from the prior; the 90% credible interval of each posterior
        // should hold its true value in about 90% of them (ABC's tolerance makes it, if anything, wider).
        let sigma = 0.4;
        let reps = 40;
        for sampler in [Sampler::Pmc, Sampler::Mcmc] {
            let mut covered = 0;
            for rep in 0..reps {
                let mut r = CounterRng::new(77, rep);
                let truth = r.normal();
                let obs = truth + sigma * r.normal();
                let observed = Observed { values: vec![obs], se: vec![0.0], fit: vec![true] };
                let opts =
                    AbcOptions { sampler, particles: 200, generations: 5, seed: 100 + rep, ..Default::default() };
                let (pops, _) = run(&opts, 1, &observed, &mut toy(sigma, rep), &mut |_| Ok::<(), ()>(())).unwrap();
                let last = pops.last().unwrap();
                let z: Vec<f64> = last.particles.iter().map(|p| p.z[0]).collect();
                let w: Vec<f64> = last.particles.iter().map(|p| p.weight).collect();
                let (lo, hi) = (weighted_quantile(&z, &w, 0.05), weighted_quantile(&z, &w, 0.95));
                covered += usize::from(lo <= truth && truth <= hi);
            }
            let rate = covered as f64 / reps as f64;
            assert!((0.75..=1.0).contains(&rate), "{sampler:?}: coverage {rate}");
        }
    }

    #[test]
    fn resampling_follows_the_weights() {
        let particles = (0..4)
            .map(|i| Particle {
                born: 0,
                index: i,
                z: vec![i as f64],
                weight: [0.1, 0.0, 0.6, 0.3][i as usize],
                distance: 0.0,
                summary: vec![],
            })
            .collect();
        let pop = Population {
            generation: 0,
            tolerance: 0.0,
            scales: vec![],
            spread: vec![],
            particles,
            evaluated: 4,
            proposed: 4,
            acceptance: 1.0,
            ess: 1.0,
            mcmc_steps: 0,
            mcmc_beta: 0.0,
        };
        let d = resample(&pop, 1000, 7);
        let count = |j: usize| d.iter().filter(|x| **x == j).count();
        assert_eq!(count(1), 0);
        assert!((count(0) as i64 - 100).abs() <= 1 && (count(2) as i64 - 600).abs() <= 1, "{} {}", count(0), count(2));
        assert_eq!(resample(&pop, 10, 7), resample(&pop, 10, 7));
    }
}
