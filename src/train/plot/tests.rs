use super::*;
use serde_json::json;

fn is_ink(p: Rgb) -> bool {
    p.iter().all(|&v| v < 90)
}

fn count(c: &Canvas, (l, t, r, b): (usize, usize, usize, usize), f: impl Fn(Rgb) -> bool) -> usize {
    (t..=b)
        .flat_map(|y| (l..=r).map(move |x| (x, y)))
        .filter(|&(x, y)| f(c.get(x, y)))
        .count()
}

fn line_fig(points: Vec<(f64, f64)>) -> Figure {
    Figure {
        title: "run: train/x".into(),
        y_label: "x".into(),
        traces: vec![Trace {
            label: "x".into(),
            points,
            colour: SLOTS[0].1,
            width: 2.0,
            markers: false,
        }],
    }
}

/// A loss that falls with noise, logged every step, evaluated every 50.
fn sft_history(n: usize) -> Vec<Value> {
    (1..=n)
        .map(|s| {
            let noise = ((s * 7919) % 13) as f64 / 13.0 - 0.5;
            let mut r = json!({
                "step": s,
                "loss": 2.0 / (1.0 + s as f64 / 40.0) + 0.2 * noise,
                "grad_norm": 1.0 + 0.3 * noise,
                "learning_rate": 2e-4 * (1.0 - s as f64 / n as f64),
                "token_acc": 0.5 + 0.4 * s as f64 / n as f64,
                "tokens_per_second": 900.0,
                "epoch": s as f64 / 10.0,
            });
            if s % 50 == 0 {
                r["eval_loss"] = json!(2.2 / (1.0 + s as f64 / 40.0));
                r["eval_token_acc"] = json!(0.5);
            }
            r
        })
        .collect()
}

fn dpo_history(n: usize) -> Vec<Value> {
    (1..=n)
        .map(|s| {
            let t = s as f64 / n as f64;
            json!({
                "step": s,
                "loss": 0.693 - 0.5 * t,
                "grad_norm": 3.0,
                "learning_rate": 5e-6,
                "rewards/chosen": 0.5 * t,
                "rewards/rejected": -1.5 * t,
                "rewards/accuracies": if s == 1 { 0.0 } else { 1.0 },
                "rewards/margins": 2.0 * t,
                "logps/chosen": -50.0,
                "logps/rejected": -60.0,
            })
        })
        .collect()
}

#[test]
fn the_loss_plot_has_a_title_tick_labels_a_legend_and_the_eval_curve() {
    let figs = figures(&sft_history(200), "myrun");
    let (_, fig) = figs.iter().find(|(f, _)| *f == "train_loss").unwrap();
    assert_eq!(fig.title, "myrun: train/loss");
    let labels: Vec<&str> = fig.traces.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["train", "smoothed (EMA 0.8)", "eval"]);
    assert_eq!(fig.traces[2].points.len(), 4);
    let (c, lay) = render(fig).unwrap();
    let (l, t, r, b) = lay.plot;

    // Title: ink inside its box, centred, above the plot.
    assert!(count(&c, lay.title, is_ink) > 200);
    assert!(lay.title.3 < t);
    assert!((lay.title.0 + lay.title.2) as i64 / 2 - W as i64 / 2 <= 1);
    // Nothing else is drawn in the band of the title.
    assert_eq!(
        count(&c, (0, lay.title.1, lay.title.0 - 2, lay.title.3), is_ink),
        0
    );

    // Tick values: at least 4 a side, evenly spaced, labelled next to the
    // axis (ink to the left of each y tick and below each x tick).
    assert!(lay.y_ticks.len() >= 4 && lay.x_ticks.len() >= 4, "{lay:?}");
    let ys: Vec<f64> = lay
        .y_ticks
        .iter()
        .map(|(_, s)| s.parse().unwrap())
        .collect();
    let steps: Vec<f64> = ys.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(steps.iter().all(|s| (s - steps[0]).abs() < 1e-9), "{ys:?}");
    let mag = 10f64.powf(steps[0].log10().floor());
    assert!(
        [1.0, 2.0, 5.0]
            .iter()
            .any(|m| (steps[0] / mag - m).abs() < 1e-6),
        "{steps:?}"
    );
    for (v, _) in &lay.y_ticks {
        let y = lay.map((0.0, *v)).1.round() as usize;
        assert!(
            count(&c, (0, y - 8, l - 6, y + 8), is_ink) > 10,
            "label of y tick {v}"
        );
    }
    for (v, s) in &lay.x_ticks {
        assert_eq!(s.parse::<f64>().unwrap(), *v);
        let x = lay.map((*v, 0.0)).0.round() as usize;
        assert!(
            count(&c, (x - 12, b + 6, x + 12, b + 30), is_ink) > 10,
            "label of x tick {v}"
        );
    }
    // "step" under the x labels, the y label turned up left of the y labels.
    assert!(
        count(
            &c,
            ((l + r) / 2 - 30, b + 34, (l + r) / 2 + 30, H - 1),
            is_ink
        ) > 40
    );
    assert!(count(&c, (0, t, 30, b), is_ink) > 40);

    // Legend: one sample line per trace in its colour, and label text.
    let (bl, bt, br, bb) = lay.legend;
    assert!(bl > l && br < r && bt > t && bb < b);
    for tr in &fig.traces {
        assert!(
            count(&c, lay.legend, |p| p == tr.colour) >= 20,
            "{}",
            tr.label
        );
    }
    assert!(count(&c, lay.legend, is_ink) > 300);
    // A falling curve leaves the top right free: the legend goes there.
    assert!(bl > (l + r) / 2 && bb < (t + b) / 2, "{lay:?}");

    // The eval points are drawn where their values map, on top of the rest.
    for &p in &fig.traces[2].points {
        let (x, y) = lay.map(p);
        assert_eq!(
            c.get(x.round() as usize, y.round() as usize),
            EVAL[0],
            "{p:?}"
        );
    }
}

#[test]
fn the_curve_crosses_the_grid_where_its_values_say() {
    // y = x / 100 over steps 0..=100: it must pass through the crossing of
    // the grid lines labelled 40 and 0.40, found by reading the picture.
    let fig = line_fig((0..=100).map(|s| (s as f64, s as f64 / 100.0)).collect());
    let (c, lay) = render(&fig).unwrap();
    let (l, t, r, b) = lay.plot;
    let colour = fig.traces[0].colour;
    // Grid rows in a column left of the curve, grid columns in a row above it.
    let rows: Vec<usize> = (t + 1..b).filter(|&y| c.get(l + 2, y) == GRID).collect();
    let cols: Vec<usize> = (l + 1..r).filter(|&x| c.get(x, t + 2) == GRID).collect();
    let ylabels: Vec<&str> = lay.y_ticks.iter().rev().map(|(_, s)| s.as_str()).collect();
    let xlabels: Vec<&str> = lay.x_ticks.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(ylabels, ["1.0", "0.8", "0.6", "0.4", "0.2", "0.0"]);
    assert_eq!(
        xlabels,
        ["0", "10", "20", "30", "40", "50", "60", "70", "80", "90", "100"]
    );
    assert_eq!(rows.len(), ylabels.len(), "{rows:?}");
    assert_eq!(cols.len(), xlabels.len(), "{cols:?}");
    for (k, (xs, ys)) in [("20", "0.2"), ("40", "0.4"), ("80", "0.8")]
        .iter()
        .enumerate()
    {
        let x = cols[xlabels.iter().position(|s| s == xs).unwrap()];
        let y = rows[ylabels.iter().position(|s| s == ys).unwrap()];
        assert_eq!(c.get(x, y), colour, "crossing {k}");
        assert_ne!(c.get(x, y - 6), colour);
        assert_ne!(c.get(x, y + 6), colour);
    }
    // The legend went to the free top-left corner, away from the curve.
    assert!(lay.legend.0 < (l + r) / 2 && lay.legend.3 < (t + b) / 2);
}

#[test]
fn sft_and_dpo_runs_get_their_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let names = |out: &Path, h: &[Value]| -> Vec<String> {
        let mut v: Vec<String> = write_plots(out, h)
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p.parent().unwrap(), out.join("images"));
                let bytes = std::fs::read(p).unwrap();
                let (w, h, _) = png::decode(&bytes).unwrap();
                assert_eq!((w, h), (W, H));
                p.file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        v.sort();
        let mut on_disk: Vec<String> = std::fs::read_dir(out.join("images"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        assert_eq!(v, on_disk, "no temporary files left");
        v
    };
    let sft = dir.path().join("sft");
    assert_eq!(
        names(&sft, &sft_history(120)),
        [
            "eval_loss.png",
            "train_grad_norm.png",
            "train_learning_rate.png",
            "train_loss.png",
            "train_token_acc.png"
        ]
    );
    let dpo = dir.path().join("dpo");
    assert_eq!(
        names(&dpo, &dpo_history(10)),
        [
            "train_grad_norm.png",
            "train_learning_rate.png",
            "train_loss.png",
            "train_rewards_accuracies.png",
            "train_rewards_chosen_rejected.png",
            "train_rewards_margins.png",
        ]
    );
    let figs = figures(&dpo_history(10), "dpo");
    let (_, rw) = figs
        .iter()
        .find(|(f, _)| *f == "train_rewards_chosen_rejected")
        .unwrap();
    let labels: Vec<&str> = rw.traces.iter().map(|t| t.label.as_str()).collect();
    // 10 points: too few to smooth, drawn as they are, with markers.
    assert_eq!(labels, ["chosen", "rejected"]);
    assert!(rw.traces.iter().all(|t| t.markers));
    assert_ne!(rw.traces[0].colour, rw.traces[1].colour);
    // Nothing logged, nothing drawn.
    assert!(write_plots(&dir.path().join("none"), &[json!({"step": 1})])
        .unwrap()
        .is_empty());
}

#[test]
fn nan_inf_one_point_constant_tiny_and_many_values_draw() {
    // NaN and inf are skipped; a series of nothing else writes no file.
    let mut h = sft_history(30);
    h[3]["loss"] = json!(f64::NAN); // serde_json turns it into null
    let mut fig = line_fig(vec![
        (1.0, 2.0),
        (2.0, f64::NAN),
        (3.0, f64::INFINITY),
        (4.0, 1.0),
    ]);
    let (c, lay) = render(&fig).unwrap();
    assert!(lay.range.3 < 3.0, "{lay:?}");
    assert!(count(&c, lay.plot, |p| p == fig.traces[0].colour) > 20);
    fig.traces[0].points = vec![(1.0, f64::NAN), (f64::NAN, 1.0)];
    assert!(render(&fig).is_none());
    let dir = tempfile::tempdir().unwrap();
    assert!(!write_figure(&dir.path().join("x.png"), &fig).unwrap());
    assert!(!dir.path().join("x.png").exists());
    assert_eq!(write_plots(dir.path(), &h).unwrap().len(), 4);

    // One point: a dot in the middle, ticks around it.
    let fig = line_fig(vec![(7.0, 0.25)]);
    let (c, lay) = render(&fig).unwrap();
    let (x, y) = lay.map((7.0, 0.25));
    assert_eq!(
        c.get(x.round() as usize, y.round() as usize),
        fig.traces[0].colour
    );
    assert!(
        lay.x_ticks.iter().any(|(v, s)| *v == 7.0 && s == "7"),
        "{lay:?}"
    );
    assert!(lay.y_ticks.len() >= 3);

    // Constant values (zero among them) get a window and distinct labels.
    for v in [0.0, 3.0, 1e-4, -2.5e7] {
        let fig = line_fig((1..=20).map(|s| (s as f64, v)).collect());
        let (_, lay) = render(&fig).unwrap();
        let labels: Vec<&String> = lay.y_ticks.iter().map(|(_, s)| s).collect();
        assert!(labels.len() >= 3, "{v}: {labels:?}");
        let distinct: std::collections::HashSet<_> = labels.iter().collect();
        assert_eq!(distinct.len(), labels.len(), "{v}: {labels:?}");
    }

    // A learning-rate schedule: labels in e-notation, all distinct.
    let fig = line_fig(
        (0..=100)
            .map(|s| (s as f64, 2e-4 * s as f64 / 100.0))
            .collect(),
    );
    let (_, lay) = render(&fig).unwrap();
    let labels: Vec<&str> = lay.y_ticks.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(labels, ["0", "0.5e-4", "1.0e-4", "1.5e-4", "2.0e-4"]);

    // Very many points.
    let fig = line_fig(
        (0..200_000)
            .map(|s| (s as f64, (s as f64 / 5000.0).sin()))
            .collect(),
    );
    let (c, lay) = render(&fig).unwrap();
    assert!(lay.x_ticks.len() >= 4);
    assert!(count(&c, lay.plot, |p| p == fig.traces[0].colour) > 2000);
    // Long step numbers: x labels thinned out so they never touch.
    for last in [20_000.0, 1_234_567.0, 99_999_999.0] {
        let (_, lay) = render(&line_fig(vec![(1.0, 1.0), (last, 2.0)])).unwrap();
        assert!(lay.x_ticks.len() >= 3, "{lay:?}");
        for w in lay.x_ticks.windows(2) {
            let gap = lay.map((w[1].0, 0.0)).0 - lay.map((w[0].0, 0.0)).0;
            let half = |s: &str| font::text_width(s, TEXT) as f64 / 2.0;
            assert!(gap > half(&w[0].1) + half(&w[1].1) + 8.0, "{lay:?}");
        }
    }
}

#[test]
fn smoothing_is_debiased_and_does_not_lag_on_short_runs() {
    assert!(ema_debiased(&[3.0; 50], 0.9)
        .iter()
        .all(|v| (v - 3.0).abs() < 1e-12));
    assert_eq!(ema_debiased(&[5.0, 1.0], 0.0), [5.0, 1.0]);
    let s = ema_debiased(&[1.0, 0.0], 0.5);
    // (0.5 * 0.5 * 1 + 0.5 * 0) / (1 - 0.25) = 1/3
    assert!(
        (s[0] - 1.0).abs() < 1e-12 && (s[1] - 1.0 / 3.0).abs() < 1e-12,
        "{s:?}"
    );
    assert_eq!(ema_weight(12), None);
    assert_eq!(ema_weight(21), None);
    assert_eq!(ema_weight(22), Some(0.3));
    assert_eq!(ema_weight(100), Some(0.6));
    assert_eq!(ema_weight(450), Some(0.9));
    assert_eq!(ema_weight(5000), Some(0.9));
    // On a straight fall the smoothed end trails by under 2.5% of the run.
    for n in [22usize, 100, 400, 2000] {
        let w = ema_weight(n).unwrap();
        let ys: Vec<f64> = (0..n).map(|i| 1.0 - i as f64 / n as f64).collect();
        let lag = (ema_debiased(&ys, w)[n - 1] - ys[n - 1]) * n as f64;
        assert!(lag < 0.025 * n as f64, "n {n}: lag {lag} points");
    }
}

#[test]
fn ticks_fall_on_one_two_five_steps() {
    assert_eq!(
        nice_ticks(0.0, 1.0, 5, 0.0),
        (0.2, vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0])
    );
    let (s, t) = nice_ticks(0.93, 1.07, 6, 0.0);
    assert!((s - 0.02).abs() < 1e-12, "{s}");
    assert_eq!(
        tick_labels(&t, s),
        ["0.94", "0.96", "0.98", "1.00", "1.02", "1.04", "1.06"]
    );
    let (s, t) = nice_ticks(-4.0, 13.0, 8, 1.0);
    assert_eq!(s, 2.0);
    assert_eq!(
        tick_labels(&t, s),
        ["-4", "-2", "0", "2", "4", "6", "8", "10", "12"]
    );
    let (s, t) = nice_ticks(5.0, 9.0, 8, 1.0);
    assert_eq!((s, t.len()), (1.0, 5));
    assert_eq!(tick_labels(&[-1e-12, 0.1], 0.1), ["0.0", "0.1"]);
    assert_eq!(tick_labels(&[2e6, 4e6], 2e6), ["2e6", "4e6"]);
}

#[test]
fn the_run_name_is_the_output_directory_name() {
    assert_eq!(run_name(Path::new("/tmp/plotrun")), "plotrun");
    assert_eq!(run_name(Path::new("out/run-3/")), "run-3");
    assert!(!run_name(Path::new(".")).is_empty());
    // A long name is cut to fit, a non-ASCII one drawn with '?'.
    let mut fig = line_fig(vec![(1.0, 1.0), (2.0, 2.0)]);
    fig.title = "\u{e9}".repeat(200);
    let (_, lay) = render(&fig).unwrap();
    assert!(lay.title.0 >= 10 && lay.title.2 <= W - 10, "{lay:?}");
}
