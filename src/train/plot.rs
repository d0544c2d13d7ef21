//! Training curves as PNG images in `OUTPUT_DIR/images/`, one per metric
//! that matters, named as ms-swift names them (the TensorBoard tag with `/`
//! turned into `_`): `train_loss.png` (with the eval loss on it when there is
//! one), `eval_loss.png`, `train_learning_rate.png`, `train_grad_norm.png`,
//! `train_token_acc.png`, and for preference runs
//! `train_rewards_chosen_rejected.png` (both on one plot),
//! `train_rewards_margins.png` and `train_rewards_accuracies.png`.
//!
//! Each has a title (run name: tag), a `step` axis and a value axis with
//! tick values at 1-2-5 steps, grid lines and a legend. Text comes from a
//! bitmap font of our own ([`font`]) so no system font is needed, and the
//! drawing is ours too: plotters' bitmap backend would bring the `image`
//! stack (a long build on the shared machines) and system fonts.
//!
//! Smoothing is TensorBoard's: a debiased exponential moving average over the
//! logged points (`s_k = (w s_{k-1} + (1-w) v_k) / (1 - w^k)`), with ms-swift's
//! weight 0.9 for long runs. An EMA trails a trend by about `w / (1 - w)`
//! points, so the weight is lowered to keep that lag within about 2% of the
//! points (`w = min(0.9, n / (n + 50))`, rounded down to a tenth), and below
//! 0.3 (fewer than 22 points) no smoothed curve is drawn: the raw points are
//! then the curve, with markers. The legend names the weight used.

mod font;
mod png;

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Canvas size in pixels.
pub const W: usize = 960;
pub const H: usize = 560;
/// Text scale (the 5x8 font drawn at 2x: 10x16 pixels a glyph).
const TEXT: usize = 2;
const TEXT_H: usize = font::ROWS * TEXT;

type Rgb = [u8; 3];
const WHITE: Rgb = [255, 255, 255];
const INK: Rgb = [33, 33, 33];
const GRID: Rgb = [229, 229, 229];
const FRAME: Rgb = [110, 110, 110];
const LEGEND_EDGE: Rgb = [190, 190, 190];
/// Per series slot: (raw, smoothed / plain) colours.
const SLOTS: [(Rgb, Rgb); 2] = [
    ([163, 196, 232], [24, 88, 178]), // blue
    ([240, 180, 170], [192, 50, 36]), // red
];
/// Eval series, per slot.
const EVAL: [Rgb; 2] = [[236, 122, 8], [128, 60, 170]];

/// One curve on a figure.
#[derive(Debug, Clone)]
pub struct Trace {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub colour: Rgb,
    /// Line width in pixels.
    pub width: f64,
    /// Draw a dot at every point.
    pub markers: bool,
}

#[derive(Debug, Clone)]
pub struct Figure {
    pub title: String,
    pub y_label: String,
    pub traces: Vec<Trace>,
}

/// Where things landed on the canvas; [`Layout::map`] turns data into pixels.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Plot area, pixels: left, top, right, bottom (inclusive).
    pub plot: (usize, usize, usize, usize),
    /// Data range shown: x0, x1, y0, y1.
    pub range: (f64, f64, f64, f64),
    pub x_ticks: Vec<(f64, String)>,
    pub y_ticks: Vec<(f64, String)>,
    /// Legend box: left, top, right, bottom.
    pub legend: (usize, usize, usize, usize),
    /// Title box: left, top, right, bottom.
    pub title: (usize, usize, usize, usize),
}

impl Layout {
    pub fn map(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let (l, t, r, b) = self.plot;
        let (x0, x1, y0, y1) = self.range;
        (
            l as f64 + (x - x0) / (x1 - x0) * (r - l) as f64,
            b as f64 - (y - y0) / (y1 - y0) * (b - t) as f64,
        )
    }
}

pub struct Canvas {
    pub px: Vec<Rgb>,
}

impl Canvas {
    fn new() -> Canvas {
        Canvas {
            px: vec![WHITE; W * H],
        }
    }
    pub fn get(&self, x: usize, y: usize) -> Rgb {
        self.px[y * W + x]
    }
    fn blend(&mut self, x: usize, y: usize, c: Rgb, a: f32) {
        if x >= W || y >= H || a <= 0.0 {
            return;
        }
        let p = &mut self.px[y * W + x];
        let a = a.min(1.0);
        for i in 0..3 {
            p[i] = (p[i] as f32 * (1.0 - a) + c[i] as f32 * a).round() as u8;
        }
    }
    fn rect(&mut self, (l, t, r, b): (usize, usize, usize, usize), c: Rgb) {
        for y in t..=b.min(H - 1) {
            for x in l..=r.min(W - 1) {
                self.px[y * W + x] = c;
            }
        }
    }
    fn hline(&mut self, x0: usize, x1: usize, y: usize, c: Rgb) {
        self.rect((x0, y, x1, y), c);
    }
    fn vline(&mut self, x: usize, y0: usize, y1: usize, c: Rgb) {
        self.rect((x, y0, x, y1), c);
    }
    fn text(&mut self, x: usize, y: usize, s: &str, c: Rgb, bold: bool) {
        font::for_each_pixel(s, TEXT, |dx, dy| {
            self.blend(x + dx, y + dy, c, 1.0);
            if bold {
                self.blend(x + dx + 1, y + dy, c, 1.0);
            }
        });
    }
    /// Text turned a quarter left (reading upwards); (x, y) is its
    /// bottom-left corner as it lies on the page.
    fn text_up(&mut self, x: usize, y: usize, s: &str, c: Rgb) {
        font::for_each_pixel(s, TEXT, |dx, dy| {
            if let Some(py) = y.checked_sub(dx) {
                self.blend(x + dy, py, c, 1.0);
            }
        });
    }
    /// Paint `colour` with the given coverage (0..1 per pixel).
    fn composite(&mut self, cov: &Coverage, colour: Rgb) {
        for (i, &a) in cov.a.iter().enumerate() {
            if a > 0.0 {
                self.blend(i % W, i / W, colour, a);
            }
        }
    }
}

/// Anti-aliased ink of one trace, clipped to a rectangle: each pixel keeps
/// the largest coverage any of its segments gives it, so joints between
/// segments are not painted twice.
struct Coverage {
    a: Vec<f32>,
    clip: (f64, f64, f64, f64),
}

impl Coverage {
    fn new((l, t, r, b): (usize, usize, usize, usize)) -> Coverage {
        Coverage {
            a: vec![0.0; W * H],
            clip: (l as f64, t as f64, r as f64, b as f64),
        }
    }
    /// A segment of the given width, with round ends.
    fn segment(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), width: f64) {
        let half = width / 2.0;
        let (l, t, r, b) = self.clip;
        let xa = (x0.min(x1) - half - 1.0).floor().max(l);
        let xb = (x0.max(x1) + half + 1.0).ceil().min(r);
        let ya = (y0.min(y1) - half - 1.0).floor().max(t);
        let yb = (y0.max(y1) + half + 1.0).ceil().min(b);
        if xa > xb || ya > yb {
            return;
        }
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len2 = dx * dx + dy * dy;
        for py in ya as usize..=yb as usize {
            for px in xa as usize..=xb as usize {
                let (fx, fy) = (px as f64, py as f64);
                let s = if len2 > 0.0 {
                    (((fx - x0) * dx + (fy - y0) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (qx, qy) = (x0 + s * dx, y0 + s * dy);
                let d = ((fx - qx).powi(2) + (fy - qy).powi(2)).sqrt();
                let a = (half + 0.5 - d).clamp(0.0, 1.0) as f32;
                let cell = &mut self.a[py * W + px];
                if a > *cell {
                    *cell = a;
                }
            }
        }
    }
    fn dot(&mut self, p: (f64, f64), radius: f64) {
        self.segment(p, p, 2.0 * radius);
    }
    fn sum(&self, (l, t, r, b): (usize, usize, usize, usize)) -> f64 {
        let (r, b) = (r.min(W - 1), b.min(H - 1));
        (t..=b)
            .flat_map(|y| (l..=r).map(move |x| (x, y)))
            .map(|(x, y)| self.a[y * W + x] as f64)
            .sum()
    }
}

/// Tick positions at a 1-2-5 step inside [lo, hi]: the step whose number
/// of intervals is nearest `target` (on a log scale), at least `min_step`.
/// Returns (step, ticks).
fn nice_ticks(lo: f64, hi: f64, target: usize, min_step: f64) -> (f64, Vec<f64>) {
    let span = hi - lo;
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let off = |s: f64| (span / s / target as f64).ln().abs();
    let step = [0.5, 1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .fold(f64::NAN, |best: f64, s| {
            if best.is_nan() || off(s) < off(best) {
                s
            } else {
                best
            }
        })
        .max(min_step);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    (step, ticks)
}

/// Labels for ticks `step` apart: plain decimals with as many places as the
/// step needs, or `m.me-N` when the values are tiny or huge.
fn tick_labels(ticks: &[f64], step: f64) -> Vec<String> {
    let top = ticks.iter().fold(0.0f64, |m, t| m.max(t.abs()));
    let places = |s: f64| (-(s.log10() + 1e-9).floor()).max(0.0) as usize;
    if top > 0.0 && !(1e-3..1e6).contains(&top) {
        let e = top.log10().floor() as i32;
        let scale = 10f64.powi(e);
        let p = places(step / scale);
        ticks
            .iter()
            .map(|&t| {
                if t.abs() < step * 1e-6 {
                    "0".to_string()
                } else {
                    format!("{:.p$}e{e}", t / scale)
                }
            })
            .collect()
    } else {
        let p = places(step);
        ticks
            .iter()
            .map(|&t| {
                let t = if t.abs() < step * 1e-6 { 0.0 } else { t };
                format!("{t:.p$}")
            })
            .collect()
    }
}

/// The finite points of every trace.
fn finite(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// Draw `fig`; `None` when no trace has a finite point.
pub fn render(fig: &Figure) -> Option<(Canvas, Layout)> {
    let traces: Vec<Trace> = fig
        .traces
        .iter()
        .map(|t| Trace {
            points: finite(&t.points),
            ..t.clone()
        })
        .collect();
    let all: Vec<(f64, f64)> = traces
        .iter()
        .flat_map(|t| t.points.iter().copied())
        .collect();
    if all.is_empty() {
        return None;
    }
    let fold = |f: fn(&(f64, f64)) -> f64| {
        all.iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            })
    };
    // Ranges: the data with 4% to spare each side; one step or one value
    // gets a window around it.
    let (mut x0, mut x1) = fold(|p| p.0);
    if x1 - x0 < 1e-9 {
        x0 -= 1.0;
        x1 += 1.0;
    } else {
        let pad = (x1 - x0) * 0.04;
        x0 -= pad;
        x1 += pad;
    }
    let (mut y0, mut y1) = fold(|p| p.1);
    if y1 - y0 <= 1e-12 * y0.abs().max(y1.abs()).max(1e-300) {
        let half = if y0 == 0.0 { 1.0 } else { y0.abs() * 0.1 };
        y0 -= half;
        y1 += half;
    } else {
        let pad = (y1 - y0) * 0.06;
        y0 -= pad;
        y1 += pad;
    }
    // Fewer x ticks when their labels would touch (long step numbers).
    let plot_w = (W - 28) as f64 - 160.0;
    let mut x_ticks = Vec::new();
    for target in (2..=8).rev() {
        let (xs, xt) = nice_ticks(x0, x1, target, 1.0);
        x_ticks = xt.iter().copied().zip(tick_labels(&xt, xs)).collect();
        let widest = x_ticks
            .iter()
            .map(|(_, s)| font::text_width(s, TEXT))
            .max()
            .unwrap_or(0);
        if (widest + 2 * font::ADVANCE * TEXT) as f64 <= xs / (x1 - x0) * plot_w {
            break;
        }
    }
    let (ys, yt) = nice_ticks(y0, y1, 6, 0.0);
    let y_ticks: Vec<(f64, String)> = yt.iter().copied().zip(tick_labels(&yt, ys)).collect();

    // Layout, outside in: title on top; y label and tick labels on the left;
    // tick labels then "step" below.
    let title_top = 12;
    let top = title_top + TEXT_H + 20;
    let bottom = H - 12 - TEXT_H - 10 - TEXT_H - 10;
    let tick_w = y_ticks
        .iter()
        .map(|(_, s)| font::text_width(s, TEXT))
        .max()
        .unwrap_or(0);
    let y_label_x = 12;
    let left = y_label_x + TEXT_H + 14 + tick_w + 10;
    let right = W - 28;
    let mut lay = Layout {
        plot: (left, top, right, bottom),
        range: (x0, x1, y0, y1),
        x_ticks,
        y_ticks,
        legend: (0, 0, 0, 0),
        title: (0, 0, 0, 0),
    };

    let mut c = Canvas::new();
    // Grid, frame, ticks and their labels.
    for (v, s) in &lay.y_ticks {
        let y = lay.map((x0, *v)).1.round() as usize;
        c.hline(left + 1, right - 1, y, GRID);
        c.hline(left - 5, left - 1, y, FRAME);
        let w = font::text_width(s, TEXT);
        c.text(left - 8 - w, y - TEXT_H / 2 + 1, s, INK, false);
    }
    for (v, s) in &lay.x_ticks {
        let x = lay.map((*v, y0)).0.round() as usize;
        c.vline(x, top + 1, bottom - 1, GRID);
        c.vline(x, bottom + 1, bottom + 5, FRAME);
        let w = font::text_width(s, TEXT);
        c.text(x.saturating_sub(w / 2), bottom + 10, s, INK, false);
    }
    c.hline(left, right, top, FRAME);
    c.hline(left, right, bottom, FRAME);
    c.vline(left, top, bottom, FRAME);
    c.vline(right, top, bottom, FRAME);
    let xl = "step";
    c.text(
        (left + right) / 2 - font::text_width(xl, TEXT) / 2,
        bottom + 10 + TEXT_H + 10,
        xl,
        INK,
        false,
    );
    let yl_w = font::text_width(&fig.y_label, TEXT);
    c.text_up(y_label_x, (top + bottom) / 2 + yl_w / 2, &fig.y_label, INK);

    // Title, shortened with "..." when it does not fit.
    let mut title = fig.title.clone();
    let max_chars = (W - 40) / (font::ADVANCE * TEXT);
    if title.chars().count() > max_chars {
        title = title.chars().take(max_chars - 3).collect::<String>() + "...";
    }
    let tw = font::text_width(&title, TEXT) + 1;
    let tx = (W - tw) / 2;
    c.text(tx, title_top, &title, INK, true);
    lay.title = (tx, title_top, tx + tw, title_top + TEXT_H);

    // Curves, inside the frame.
    let inner = (left + 1, top + 1, right - 1, bottom - 1);
    let mut covs = Vec::new();
    for t in &traces {
        let mut cov = Coverage::new(inner);
        let px: Vec<(f64, f64)> = t.points.iter().map(|&p| lay.map(p)).collect();
        for w in px.windows(2) {
            cov.segment(w[0], w[1], t.width);
        }
        if t.markers || px.len() == 1 {
            for &p in &px {
                cov.dot(p, t.width / 2.0 + 2.0);
            }
        }
        c.composite(&cov, t.colour);
        covs.push(cov);
    }

    // Legend in the corner where it hides the least ink.
    let rows = traces.len();
    let label_w = traces
        .iter()
        .map(|t| font::text_width(&t.label, TEXT))
        .max()
        .unwrap_or(0);
    let (pad, sample, row_h) = (10, 30, TEXT_H + 8);
    let (bw, bh) = (
        pad + sample + 10 + label_w + pad,
        pad + rows * row_h - 8 + pad,
    );
    let m = 10;
    let corners = [
        ((right - m).saturating_sub(bw), top + m),
        (left + m, top + m),
        (
            (right - m).saturating_sub(bw),
            (bottom - m).saturating_sub(bh),
        ),
        (left + m, (bottom - m).saturating_sub(bh)),
    ];
    let box_at = |(x, y): (usize, usize)| (x, y, x + bw, y + bh);
    let ink =
        |b: (usize, usize, usize, usize)| covs.iter().map(|cv: &Coverage| cv.sum(b)).sum::<f64>();
    let mut best = box_at(corners[0]);
    let mut best_ink = ink(best);
    for &corner in &corners[1..] {
        let b = box_at(corner);
        let i = ink(b);
        if i < best_ink - 0.5 {
            best = b;
            best_ink = i;
        }
    }
    lay.legend = best;
    let (bl, bt, br, bb) = best;
    c.rect(best, WHITE);
    c.hline(bl, br, bt, LEGEND_EDGE);
    c.hline(bl, br, bb, LEGEND_EDGE);
    c.vline(bl, bt, bb, LEGEND_EDGE);
    c.vline(br, bt, bb, LEGEND_EDGE);
    for (i, t) in traces.iter().enumerate() {
        let y = bt + pad + i * row_h;
        let mid = (y + TEXT_H / 2) as f64;
        let mut cov = Coverage::new((bl + 1, bt + 1, br - 1, bb - 1));
        let (sx0, sx1) = ((bl + pad) as f64, (bl + pad + sample) as f64);
        cov.segment((sx0, mid), (sx1, mid), t.width);
        if t.markers {
            cov.dot(((sx0 + sx1) / 2.0, mid), t.width / 2.0 + 2.0);
        }
        c.composite(&cov, t.colour);
        c.text(bl + pad + sample + 10, y, &t.label, INK, false);
    }
    Some((c, lay))
}

/// Render `fig` and write it to `path` through a temporary name. Returns
/// false (and writes nothing) when it has no finite point.
pub fn write_figure(path: &Path, fig: &Figure) -> Result<bool> {
    let Some((c, _)) = render(fig) else {
        return Ok(false);
    };
    let bytes = png::encode(W, H, &c.px);
    crate::train::checkpoint::write_atomic(path, &bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// TensorBoard's smoothing: debiased exponential moving average.
pub fn ema_debiased(values: &[f64], weight: f64) -> Vec<f64> {
    let mut last = 0.0;
    let mut debias = 1.0;
    values
        .iter()
        .map(|&v| {
            last = last * weight + (1.0 - weight) * v;
            debias *= weight;
            last / (1.0 - debias)
        })
        .collect()
}

/// The EMA weight for `n` points (see the module docs), `None` when no
/// smoothed curve is drawn.
pub fn ema_weight(n: usize) -> Option<f64> {
    let w = (n as f64 / (n as f64 + 50.0)).min(0.9);
    let w = (w * 10.0 + 1e-9).floor() / 10.0;
    (w >= 0.3).then_some(w)
}

/// One plot: which logged keys, how it is titled and labelled.
struct Spec {
    file: &'static str,
    tag: &'static str,
    y_label: &'static str,
    /// (key in logging.jsonl, legend label).
    keys: &'static [(&'static str, &'static str)],
    smooth: bool,
    /// Also draw `eval_<key>` when logged.
    eval: bool,
}

const SPECS: &[Spec] = &[
    Spec {
        file: "train_loss",
        tag: "train/loss",
        y_label: "loss",
        keys: &[("loss", "train")],
        smooth: true,
        eval: true,
    },
    Spec {
        file: "eval_loss",
        tag: "eval/loss",
        y_label: "loss",
        keys: &[("eval_loss", "eval")],
        smooth: false,
        eval: false,
    },
    Spec {
        file: "train_learning_rate",
        tag: "train/learning_rate",
        y_label: "learning rate",
        keys: &[("learning_rate", "learning rate")],
        smooth: false,
        eval: false,
    },
    Spec {
        file: "train_grad_norm",
        tag: "train/grad_norm",
        y_label: "grad norm",
        keys: &[("grad_norm", "grad norm")],
        smooth: true,
        eval: false,
    },
    Spec {
        file: "train_token_acc",
        tag: "train/token_acc",
        y_label: "token accuracy",
        keys: &[("token_acc", "train")],
        smooth: true,
        eval: true,
    },
    Spec {
        file: "train_rewards_chosen_rejected",
        tag: "train/rewards/chosen, rejected",
        y_label: "reward",
        keys: &[
            ("rewards/chosen", "chosen"),
            ("rewards/rejected", "rejected"),
        ],
        smooth: true,
        eval: true,
    },
    Spec {
        file: "train_rewards_margins",
        tag: "train/rewards/margins",
        y_label: "reward margin",
        keys: &[("rewards/margins", "train")],
        smooth: true,
        eval: true,
    },
    Spec {
        file: "train_rewards_accuracies",
        tag: "train/rewards/accuracies",
        y_label: "reward accuracy",
        keys: &[("rewards/accuracies", "train")],
        smooth: true,
        eval: true,
    },
];

/// Points with markers up to this many.
const MARKERS_UP_TO: usize = 60;

fn series(history: &[Value], key: &str) -> Vec<(f64, f64)> {
    let pts: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|r| Some((r.get("step")?.as_f64()?, r.get(key)?.as_f64()?)))
        .collect();
    finite(&pts)
}

/// The figures for a log history; `run` goes into the titles.
fn figures(history: &[Value], run: &str) -> Vec<(&'static str, Figure)> {
    let mut out = Vec::new();
    for spec in SPECS {
        let mut traces = Vec::new();
        let single = spec.keys.len() == 1;
        for (slot, &(key, label)) in spec.keys.iter().enumerate() {
            let pts = series(history, key);
            if pts.is_empty() {
                continue;
            }
            let (raw_c, dark_c) = SLOTS[slot % SLOTS.len()];
            match spec.smooth.then(|| ema_weight(pts.len())).flatten() {
                Some(w) => {
                    let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
                    let sm = ema_debiased(&ys, w);
                    traces.push(Trace {
                        label: label.to_string(),
                        points: pts.clone(),
                        colour: raw_c,
                        width: 1.5,
                        markers: false,
                    });
                    traces.push(Trace {
                        label: if single {
                            format!("smoothed (EMA {w:.1})")
                        } else {
                            format!("{label}, smoothed (EMA {w:.1})")
                        },
                        points: pts.iter().zip(sm).map(|(p, s)| (p.0, s)).collect(),
                        colour: dark_c,
                        width: 2.5,
                        markers: false,
                    });
                }
                None => traces.push(Trace {
                    label: label.to_string(),
                    markers: pts.len() <= MARKERS_UP_TO,
                    points: pts,
                    colour: if spec.file.starts_with("eval") {
                        EVAL[0]
                    } else {
                        dark_c
                    },
                    width: 2.0,
                }),
            }
        }
        if traces.is_empty() {
            continue;
        }
        if spec.eval {
            for (slot, &(key, label)) in spec.keys.iter().enumerate() {
                let pts = series(history, &format!("eval_{key}"));
                if pts.is_empty() {
                    continue;
                }
                traces.push(Trace {
                    label: if single {
                        "eval".to_string()
                    } else {
                        format!("eval {label}")
                    },
                    markers: pts.len() <= MARKERS_UP_TO,
                    points: pts,
                    colour: EVAL[slot % EVAL.len()],
                    width: 2.0,
                });
            }
        }
        let figure = Figure {
            title: format!("{run}: {}", spec.tag),
            y_label: spec.y_label.to_string(),
            traces,
        };
        out.push((spec.file, figure));
    }
    out
}

/// The run's name for titles: the output directory's name.
fn run_name(output_dir: &Path) -> String {
    let named = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    named(output_dir)
        .or_else(|| output_dir.canonicalize().ok().as_deref().and_then(named))
        .unwrap_or_else(|| output_dir.display().to_string())
}

/// Draw the plots of a log history into `output_dir/images/`. Returns the
/// files written (a plot whose metric was never logged is not written).
pub fn write_plots(output_dir: &Path, history: &[Value]) -> Result<Vec<PathBuf>> {
    let img = output_dir.join("images");
    let mut written = Vec::new();
    for (file, fig) in figures(history, &run_name(output_dir)) {
        let path = img.join(format!("{file}.png"));
        if write_figure(&path, &fig)? {
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
