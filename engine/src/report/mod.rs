//! The validation report: plots computed by SQL over the matched pairs, drawn as inline
//! SVG, in one self-contained HTML page.

pub mod svg;

use std::fmt::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::Result;
use pz_udfs::metrics::pdf_arg::PdfColumn;

use crate::pipelines::validate::{
    f64_rows, grid_args, MetricSet, Validation, PAIRS, TARGET_BIAS, TARGET_OUTLIERS, TARGET_SIGMA,
};
use crate::PzContext;
use svg::{Chart, PALETTE};

/// One figure of the report.
pub struct Figure {
    pub section: &'static str,
    pub svg: String,
    pub caption: String,
}

/// Histogram counts by integer bin index from rows (bin, count [, group]).
fn binned(rows: &[Vec<Option<f64>>], nbins: usize) -> Vec<f64> {
    let mut h = vec![0.0; nbins];
    for r in rows {
        if let (Some(b), Some(c)) = (r[0], r[1]) {
            let b = b as i64;
            if b >= 0 && (b as usize) < nbins {
                h[b as usize] += c;
            }
        }
    }
    h
}

fn first_list(batches: &[RecordBatch], col: usize) -> Result<Vec<(Option<f64>, Vec<f64>)>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for b in batches {
        let key = if col > 0 {
            Some(datafusion::arrow::compute::cast(
                b.column(0),
                &datafusion::arrow::datatypes::DataType::Float64,
            )?)
        } else {
            None
        };
        let lists = PdfColumn::new("report", b.column(col))?;
        for i in 0..b.num_rows() {
            let k = key.as_ref().and_then(|k| {
                use datafusion::arrow::array::{Array, AsArray};
                let k = k.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
                k.is_valid(i).then(|| k.value(i))
            });
            if let Some(v) = lists.row(i, &mut buf) {
                out.push((k, v.to_vec()));
            }
        }
    }
    Ok(out)
}

/// Every plot of the report.
pub async fn plots(ctx: &PzContext, v: &Validation, has_mag: bool) -> Result<Vec<Figure>> {
    let g = v.grid;
    let mut figs = Vec::new();

    // zphot against ztrue.
    let nb = 75usize;
    let w = (g.zmax - g.zmin) / nb as f64;
    let rows = f64_rows(
        ctx,
        &format!(
            "SELECT CAST(floor((ztrue - {z0}) / {w}) AS BIGINT), CAST(floor((zphot - {z0}) / {w}) AS BIGINT), count(*) \
             FROM {PAIRS} WHERE ztrue >= {z0} AND ztrue < {z1} AND zphot >= {z0} AND zphot < {z1} GROUP BY 1, 2",
            z0 = g.zmin,
            z1 = g.zmax
        ),
    )
    .await?;
    let mut counts = vec![vec![0.0; nb]; nb];
    for r in &rows {
        if let (Some(x), Some(y), Some(c)) = (r[0], r[1], r[2]) {
            let (x, y) = (x as usize, y as usize);
            if x < nb && y < nb {
                counts[x][y] += c;
            }
        }
    }
    let edges: Vec<f64> = (0..=nb).map(|i| g.zmin + i as f64 * w).collect();
    let mut c = Chart::new(
        "Photo-z against true redshift",
        "true redshift z_true",
        "photo-z z_phot (mode)",
        (g.zmin, g.zmax),
        (g.zmin, g.zmax),
    );
    c.density(edges.clone(), edges.clone(), counts);
    let zs: Vec<f64> = vec![g.zmin, g.zmax];
    c.line(zs.clone(), zs.clone(), "#333333", Some("z_phot = z_true"));
    c.dashed(
        zs.clone(),
        zs.iter().map(|z| z + 0.15 * (1.0 + z)).collect(),
        PALETTE[1],
        Some("|dz| = 0.15"),
    );
    c.dashed(
        zs.clone(),
        zs.iter().map(|z| z - 0.15 * (1.0 + z)).collect(),
        PALETTE[1],
        None,
    );
    figs.push(Figure {
        section: "Point estimates",
        svg: c.render(),
        caption: format!(
            "{} objects, shaded by log count in {nb}×{nb} cells.",
            v.n_matched
        ),
    });

    // PIT histogram and QQ.
    let nbins = 50usize;
    let rows = f64_rows(
        ctx,
        &format!(
            "SELECT CAST(least(floor(pit * {nbins}), {}) AS BIGINT), count(*) FROM \
             (SELECT pz_pit(pdf, ztrue, {}) AS pit FROM {PAIRS}) WHERE pit IS NOT NULL GROUP BY 1",
            nbins - 1,
            grid_args(&g)
        ),
    )
    .await?;
    let h = binned(&rows, nbins);
    let total: f64 = h.iter().sum();
    let dens: Vec<f64> = h
        .iter()
        .map(|c| c / total.max(1.0) * nbins as f64)
        .collect();
    let pit_edges: Vec<f64> = (0..=nbins).map(|i| i as f64 / nbins as f64).collect();
    let ymax = dens.iter().cloned().fold(1.0, f64::max) * 1.1;
    let mut c = Chart::new(
        "PIT histogram",
        "PIT = CDF(z_true)",
        "density",
        (0.0, 1.0),
        (0.0, ymax),
    );
    c.steps(pit_edges.clone(), dens, PALETTE[0], Some("pz"));
    c.dashed(
        vec![0.0, 1.0],
        vec![1.0, 1.0],
        "#333333",
        Some("calibrated"),
    );
    figs.push(Figure {
        section: "PDF calibration",
        svg: c.render(),
        caption: format!(
            "PIT of {} PDFs; KS {:.4}, CvM {:.2}, AD {:.1}, outlier rate {:.4}.",
            total as u64,
            v.overall.pit_ks.unwrap_or(f64::NAN),
            v.overall.pit_cvm.unwrap_or(f64::NAN),
            v.overall.pit_ad.unwrap_or(f64::NAN),
            v.overall.pit_outlier_rate.unwrap_or(f64::NAN)
        ),
    });
    let mut cum = vec![0.0];
    for x in &h {
        cum.push(cum.last().copied().unwrap_or(0.0) + x / total.max(1.0));
    }
    let mut c = Chart::new(
        "PIT quantile–quantile",
        "uniform quantile",
        "PIT quantile",
        (0.0, 1.0),
        (0.0, 1.0),
    );
    c.line(
        vec![0.0, 1.0],
        vec![0.0, 1.0],
        "#333333",
        Some("calibrated"),
    );
    c.line(cum, pit_edges, PALETTE[0], Some("pz"));
    figs.push(Figure {
        section: "PDF calibration",
        svg: c.render(),
        caption: "Quantiles of the PIT values against those of U(0, 1); above the diagonal \
                  at low quantiles means too narrow PDFs, below means too broad."
            .into(),
    });

    // N(z): stacked PDFs against the true histogram, overall and per tomographic bin.
    let hw = ((g.zmax - g.zmin) / 60.0).max(g.step());
    let nh = ((g.zmax - g.zmin) / hw).ceil() as usize;
    let hist_edges: Vec<f64> = (0..=nh).map(|i| g.zmin + i as f64 * hw).collect();
    let stacked = ctx
        .ctx
        .sql(&format!(
            "SELECT pz_nz(pdf, {}) FROM {PAIRS}",
            grid_args(&g)
        ))
        .await?
        .collect()
        .await?;
    let stacked = first_list(&stacked, 0)?;
    let truth_rows = f64_rows(
        ctx,
        &format!(
            "SELECT CAST(floor((ztrue - {}) / {hw}) AS BIGINT), count(*) FROM {PAIRS} WHERE ztrue IS NOT NULL GROUP BY 1",
            g.zmin
        ),
    )
    .await?;
    let zgrid = g.points();
    let nz_chart = |title: &str, nz: Option<&Vec<f64>>, hist: Vec<f64>, color: &str| {
        let n: f64 = hist.iter().sum();
        let dens: Vec<f64> = hist.iter().map(|c| c / n.max(1.0) / hw).collect();
        let peak = dens
            .iter()
            .chain(nz.into_iter().flatten())
            .cloned()
            .fold(0.0, f64::max);
        let mut c = Chart::new(
            title,
            "redshift z",
            "N(z), normalised",
            (g.zmin, g.zmax),
            (0.0, peak * 1.1),
        );
        c.steps(
            hist_edges.clone(),
            dens,
            "#555555",
            Some("true z histogram"),
        );
        if let Some(nz) = nz {
            c.line(zgrid.clone(), nz.clone(), color, Some("stacked PDFs"));
        }
        c.render()
    };
    figs.push(Figure {
        section: "N(z)",
        svg: nz_chart(
            "N(z), all objects",
            stacked.first().map(|s| &s.1),
            binned(&truth_rows, nh),
            PALETTE[0],
        ),
        caption: "Mean of the normalised PDFs against the histogram of true redshifts.".into(),
    });
    let edges_sql = v
        .tomo_edges
        .iter()
        .map(|e| format!("{e:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let binned_view = format!(
        "(SELECT *, pz_tomo_bin(zphot, [{edges_sql}]) AS bin FROM {PAIRS}) WHERE bin IS NOT NULL"
    );
    let per_bin_nz = ctx
        .ctx
        .sql(&format!(
            "SELECT bin, pz_nz(pdf, {}) FROM {binned_view} GROUP BY bin ORDER BY bin",
            grid_args(&g)
        ))
        .await?
        .collect()
        .await?;
    let per_bin_nz = first_list(&per_bin_nz, 1)?;
    let per_bin_truth = f64_rows(
        ctx,
        &format!(
            "SELECT bin, CAST(floor((ztrue - {}) / {hw}) AS BIGINT), count(*) FROM {binned_view} GROUP BY 1, 2",
            g.zmin
        ),
    )
    .await?;
    for tb in &v.tomo {
        // An empty bin has nothing to draw; the metrics table lists it.
        if tb.metrics.n == 0 {
            continue;
        }
        let rows: Vec<Vec<Option<f64>>> = per_bin_truth
            .iter()
            .filter(|r| r[0] == Some(tb.bin as f64))
            .map(|r| r[1..].to_vec())
            .collect();
        let nz = per_bin_nz
            .iter()
            .find(|(k, _)| *k == Some(tb.bin as f64))
            .map(|(_, v)| v);
        let color = PALETTE[(tb.bin as usize) % PALETTE.len()];
        figs.push(Figure {
            section: "N(z)",
            svg: nz_chart(
                &format!("N(z), bin {}: {} ≤ z_phot < {}", tb.bin, tb.z_lo, tb.z_hi),
                nz,
                binned(&rows, nh),
                color,
            ),
            caption: format!(
                "Tomographic bin {} ({} objects, selected on z_phot).",
                tb.bin, tb.metrics.n
            ),
        });
    }

    // Metrics against magnitude and redshift.
    let trend = |title: &str, xlabel: &str, rows: &[Vec<Option<f64>>], width: f64| {
        let xs: Vec<f64> = rows
            .iter()
            .filter_map(|r| r[0].map(|b| (b + 0.5) * width))
            .collect();
        let col =
            |k: usize| -> Vec<f64> { rows.iter().map(|r| r[k].unwrap_or(f64::NAN)).collect() };
        let (sig, bias, out) = (col(2), col(3), col(4));
        let all: Vec<f64> = sig
            .iter()
            .chain(&bias)
            .chain(&out)
            .cloned()
            .filter(|x| x.is_finite())
            .collect();
        let lo = all.iter().cloned().fold(0.0, f64::min);
        let hi = all.iter().cloned().fold(TARGET_SIGMA, f64::max);
        let (x0, x1) = match (xs.first(), xs.last()) {
            (Some(a), Some(b)) if b > a => (a - width / 2.0, b + width / 2.0),
            (Some(a), _) => (a - width, a + width),
            _ => (0.0, 1.0),
        };
        let mut c = Chart::new(
            title,
            xlabel,
            "metric value",
            (x0, x1),
            (lo - 0.05 * (hi - lo), hi * 1.1),
        );
        c.band(-TARGET_BIAS, TARGET_BIAS, PALETTE[2]);
        c.dashed(
            vec![x0, x1],
            vec![TARGET_SIGMA, TARGET_SIGMA],
            PALETTE[0],
            None,
        );
        c.line(xs.clone(), sig, PALETTE[0], Some("σ_NMAD"));
        c.points(xs.clone(), bias, PALETTE[2], Some("bias"));
        c.line(xs, out, PALETTE[1], Some("outliers |dz|>0.15"));
        c.render()
    };
    let metric_cols = "count(*), pz_sigma_nmad(zphot, ztrue), pz_bias(zphot, ztrue), pz_outlier_frac(zphot, ztrue)";
    if has_mag {
        let rows = f64_rows(
            ctx,
            &format!(
                "SELECT CAST(floor(mag / 0.5) AS BIGINT) AS b, {metric_cols} FROM {PAIRS} \
                 WHERE mag < 90 GROUP BY 1 HAVING count(*) >= 20 ORDER BY 1"
            ),
        )
        .await?;
        figs.push(Figure {
            section: "Trends",
            svg: trend("Metrics against i magnitude", "i magnitude [AB mag]", &rows, 0.5),
            caption: "Per 0.5 mag bin with at least 20 objects; the dashed line is the σ target (0.05), the band the bias target (±0.003).".into(),
        });
    }
    let rows = f64_rows(
        ctx,
        &format!(
            "SELECT CAST(floor(ztrue / 0.2) AS BIGINT) AS b, {metric_cols} FROM {PAIRS} \
             WHERE ztrue IS NOT NULL GROUP BY 1 HAVING count(*) >= 20 ORDER BY 1"
        ),
    )
    .await?;
    figs.push(Figure {
        section: "Trends",
        svg: trend(
            "Metrics against true redshift",
            "true redshift z_true",
            &rows,
            0.2,
        ),
        caption: "Per Δz = 0.2 bin of true redshift with at least 20 objects.".into(),
    });
    Ok(figs)
}

fn fmt(v: Option<f64>) -> String {
    match v {
        Some(x) if x.abs() >= 100.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.4}"),
        None => "–".into(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn metric_row(label: &str, m: &MetricSet) -> String {
    let cells = [
        m.bias,
        m.sigma_nmad,
        m.sigma_iqr,
        m.outlier_frac_0p15,
        m.outlier_rate_rail,
        m.pit_ks,
        m.pit_cvm,
        m.pit_ad,
        m.pit_outlier_rate,
        m.cde_loss,
        m.crps,
        m.brier,
    ];
    let mut s = format!(
        "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td>",
        esc(label),
        m.n,
        m.n_point,
        m.n_pdf
    );
    for (k, c) in cells.iter().enumerate() {
        // qp's PIT outlier rate comes from a quadratic spline through the PIT quantiles; in
        // small groups it can overshoot far outside [0, 1]. pz reports qp's number, and the
        // page says it is not meaningful.
        if k == 8 && c.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            let _ = write!(s, r#"<td title="{}">unstable†</td>"#, fmt(*c));
            continue;
        }
        let _ = write!(s, "<td>{}</td>", fmt(*c));
    }
    s.push_str("</tr>");
    s
}

/// Which objects each kind of metric uses, and every PDF left out with its reason, so a
/// reader never has to guess what a number was computed on.
fn pdf_accounting(v: &Validation) -> String {
    let mut s = format!(
        r#"<p class="pdfs">Grid from {}. Point metrics use <b>{}</b> of {} matched objects; PDF metrics use <b>{}</b>"#,
        esc(&v.grid_source),
        v.overall.n_point,
        v.n_matched,
        v.overall.n_pdf
    );
    if v.n_pdf_excluded == 0 {
        s.push_str("; no PDF is left out");
    } else {
        let why: Vec<String> = pz_udfs::metrics::pdf_arg::Excluded::ALL
            .iter()
            .filter_map(|r| {
                let n = v.pdf_excluded.get(r.key()).copied().unwrap_or(0);
                (n > 0).then(|| format!("{n} with {}", r.describe()))
            })
            .collect();
        let _ = write!(
            s,
            "; <b>{} PDFs left out</b>: {}",
            v.n_pdf_excluded,
            esc(&why.join(", "))
        );
    }
    if v.n_ztrue_null > 0 {
        let _ = write!(
            s,
            "; {} objects without a true redshift are in no metric",
            v.n_ztrue_null
        );
    }
    if v.n_pdf_roundoff_zeroed > 0 {
        let _ = write!(
            s,
            "; {} PDFs had negative round-off read as zero",
            v.n_pdf_roundoff_zeroed
        );
    }
    s.push_str(".</p>\n");
    s
}

/// The self-contained page.
pub fn html(title: &str, v: &Validation, figs: &[Figure]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }}
td, th {{ border: 1px solid #bbb; padding: 3px 7px; text-align: right; }}
th {{ background: #f3f3f3; }}
.pass {{ color: #1a7f37; font-weight: bold; }} .fail {{ color: #c62828; font-weight: bold; }}
.figs {{ display: flex; flex-wrap: wrap; gap: 14px; }}
figure {{ margin: 0; }} figcaption {{ font-size: 12px; max-width: 440px; color: #444; }}
.warn {{ color: #8a5300; }}
</style></head><body>
<h1>{t}</h1>
<p>Photo-z: <code>{pz}</code> ({npz} rows) · reference: <code>{truth}</code> ({nt} rows) · matched on <code>{id}</code>: <b>{nm}</b> objects · grid z ∈ [{z0}, {z1}], {nz} points · {secs:.1} s</p>
"#,
        t = esc(title),
        pz = esc(&v.pz),
        npz = v.n_pz,
        truth = esc(&v.truth),
        nt = v.n_truth,
        id = esc(v.columns.get("id").map(String::as_str).unwrap_or("")),
        nm = v.n_matched,
        z0 = v.grid.zmin,
        z1 = v.grid.zmax,
        nz = v.grid.nz,
        secs = v.seconds,
    );
    s.push_str(&pdf_accounting(v));
    if !v.warnings.is_empty() {
        s.push_str("<h2>Warnings</h2><ul>");
        for w in &v.warnings {
            let _ = write!(s, r#"<li class="warn">{}</li>"#, esc(w));
        }
        s.push_str("</ul>");
    }
    let _ = write!(
        s,
        "<h2>Science targets</h2><p>Selection: {} (DMTN-049; Schmidt et al. 2020).</p>\
         <table><tr><th>metric</th><th>value</th><th>target</th><th>result</th></tr>",
        esc(&v.target_selection)
    );
    for t in &v.targets {
        let _ = write!(
            s,
            r#"<tr><th>{}</th><td>{}</td><td>{}</td><td class="{}">{}</td></tr>"#,
            esc(&t.metric),
            fmt(t.value),
            esc(&t.requirement),
            if t.pass { "pass" } else { "fail" },
            if t.pass { "PASS" } else { "FAIL" }
        );
    }
    s.push_str("</table>");
    let _ = write!(
        s,
        "<h2>Metrics</h2><p>dz = (z_phot − z_true)/(1 + z_true). Targets: σ &lt; {TARGET_SIGMA}, |bias| &lt; {TARGET_BIAS}, outliers &lt; {TARGET_OUTLIERS}.</p>\
         <table><tr><th>objects</th><th>n</th><th>n point</th><th>n PDF</th><th>bias</th><th>σ_NMAD</th><th>σ_IQR</th><th>|dz|&gt;0.15</th><th>RAIL outliers</th>\
         <th>PIT KS</th><th>PIT CvM</th><th>PIT AD</th><th>PIT outliers</th><th>CDE loss</th><th>CRPS</th><th>Brier</th></tr>"
    );
    s.push_str(&metric_row("all", &v.overall));
    for b in &v.tomo {
        s.push_str(&metric_row(
            &format!("bin {}: {} ≤ z_phot < {}", b.bin, b.z_lo, b.z_hi),
            &b.metrics,
        ));
    }
    s.push_str("</table><p>† PIT outlier rate outside [0, 1]: qp's spline through the PIT quantiles overshoots in small groups; the value is in metrics.json as computed.</p>");
    let mut section = "";
    for f in figs {
        if f.section != section {
            if !section.is_empty() {
                s.push_str("</div>");
            }
            let _ = write!(s, r#"<h2>{}</h2><div class="figs">"#, f.section);
            section = f.section;
        }
        let _ = write!(
            s,
            "<figure>{}<figcaption>{}</figcaption></figure>",
            f.svg,
            esc(&f.caption)
        );
    }
    if !section.is_empty() {
        s.push_str("</div>");
    }
    // Marks the page with how many plots the browser laid out with drawn content, so an
    // automated check (or a person in the console) can confirm every plot rendered.
    let _ = write!(
        s,
        r#"<script>
(function () {{
  var svgs = document.querySelectorAll('svg.pz-plot'), ok = 0;
  svgs.forEach(function (g) {{
    var r = g.getBoundingClientRect();
    var marks = g.querySelectorAll('polyline, circle, g rect').length;
    if (r.width > 0 && r.height > 0 && marks > 0) ok++;
  }});
  document.body.setAttribute('data-plots', String(svgs.length));
  document.body.setAttribute('data-plots-rendered', String(ok));
}})();
</script></body></html>"#
    );
    s
}
