//! A small SVG chart writer for validation reports: axes with round-number ticks, labels
//! with units, lines, step histograms, points, a 2-D density map and a legend. The output
//! is plain SVG text, so a report is one self-contained HTML file.

use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Clip-path ids must be unique within a page.
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

pub const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

enum Mark {
    Line {
        xs: Vec<f64>,
        ys: Vec<f64>,
        color: String,
        dashed: bool,
        label: Option<String>,
    },
    Points {
        xs: Vec<f64>,
        ys: Vec<f64>,
        color: String,
        label: Option<String>,
    },
    Density {
        x_edges: Vec<f64>,
        y_edges: Vec<f64>,
        counts: Vec<Vec<f64>>,
    },
    Band {
        y0: f64,
        y1: f64,
        color: String,
    },
}

/// One chart.
pub struct Chart {
    title: String,
    x_label: String,
    y_label: String,
    x: (f64, f64),
    y: (f64, f64),
    width: f64,
    height: f64,
    marks: Vec<Mark>,
}

const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 46.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Round-number ticks covering [lo, hi].
pub fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = pz_udfs::math::exp10(pz_udfs::math::log10(raw).floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.0e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl Chart {
    pub fn new(title: &str, x_label: &str, y_label: &str, x: (f64, f64), y: (f64, f64)) -> Self {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x,
            y: if y.1 > y.0 { y } else { (y.0, y.0 + 1.0) },
            width: 440.0,
            height: 330.0,
            marks: Vec::new(),
        }
    }

    pub fn line(
        &mut self,
        xs: Vec<f64>,
        ys: Vec<f64>,
        color: &str,
        label: Option<&str>,
    ) -> &mut Self {
        self.polyline(xs, ys, color, false, label)
    }

    pub fn dashed(
        &mut self,
        xs: Vec<f64>,
        ys: Vec<f64>,
        color: &str,
        label: Option<&str>,
    ) -> &mut Self {
        self.polyline(xs, ys, color, true, label)
    }

    fn polyline(
        &mut self,
        xs: Vec<f64>,
        ys: Vec<f64>,
        color: &str,
        dashed: bool,
        label: Option<&str>,
    ) -> &mut Self {
        self.marks.push(Mark::Line {
            xs,
            ys,
            color: color.into(),
            dashed,
            label: label.map(String::from),
        });
        self
    }

    /// A histogram outline: `values[i]` over [edges[i], edges[i + 1]].
    pub fn steps(
        &mut self,
        edges: Vec<f64>,
        values: Vec<f64>,
        color: &str,
        label: Option<&str>,
    ) -> &mut Self {
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for (i, v) in values.iter().enumerate() {
            let v = self.clip_y(*v);
            xs.extend([edges[i], edges[i + 1]]);
            ys.extend([v, v]);
        }
        self.line(xs, ys, color, label)
    }

    pub fn points(
        &mut self,
        xs: Vec<f64>,
        ys: Vec<f64>,
        color: &str,
        label: Option<&str>,
    ) -> &mut Self {
        self.marks.push(Mark::Points {
            xs,
            ys,
            color: color.into(),
            label: label.map(String::from),
        });
        self
    }

    /// A horizontal band (e.g. a target range).
    pub fn band(&mut self, y0: f64, y1: f64, color: &str) -> &mut Self {
        self.marks.push(Mark::Band {
            y0,
            y1,
            color: color.into(),
        });
        self
    }

    /// `counts[ix][iy]` on the given edges, shaded on a log scale.
    pub fn density(
        &mut self,
        x_edges: Vec<f64>,
        y_edges: Vec<f64>,
        counts: Vec<Vec<f64>>,
    ) -> &mut Self {
        self.marks.push(Mark::Density {
            x_edges,
            y_edges,
            counts,
        });
        self
    }

    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x.0) / (self.x.1 - self.x.0) * (self.width - LEFT - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        let h = self.height - TOP - BOTTOM;
        TOP + h - (y - self.y.0) / (self.y.1 - self.y.0) * h
    }

    fn clip_y(&self, y: f64) -> f64 {
        y.clamp(self.y.0, self.y.1)
    }

    pub fn render(&self) -> String {
        let (w, h) = (self.width, self.height);
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg class="pz-plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}">"#,
            esc(&self.title)
        );
        let _ = write!(
            s,
            r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
            w / 2.0,
            esc(&self.title)
        );
        let (x0, x1, y0, y1) = (
            self.px(self.x.0),
            self.px(self.x.1),
            self.py(self.y.0),
            self.py(self.y.1),
        );
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let _ = write!(
            s,
            r#"<clipPath id="pzclip{id}"><rect x="{x0}" y="{y1}" width="{}" height="{}"/></clipPath>"#,
            x1 - x0,
            y0 - y1
        );
        let _ = write!(s, r#"<g clip-path="url(#pzclip{id})">"#);
        let mut legend = Vec::new();
        for m in &self.marks {
            match m {
                Mark::Band {
                    y0: a,
                    y1: b,
                    color,
                } => {
                    let (ta, tb) = (self.py(self.clip_y(*b)), self.py(self.clip_y(*a)));
                    let _ = write!(
                        s,
                        r#"<rect x="{x0}" y="{ta:.1}" width="{:.1}" height="{:.1}" fill="{color}" opacity="0.15"/>"#,
                        x1 - x0,
                        tb - ta
                    );
                }
                Mark::Density {
                    x_edges,
                    y_edges,
                    counts,
                } => {
                    let max = counts.iter().flatten().cloned().fold(0.0, f64::max);
                    for (ix, col) in counts.iter().enumerate() {
                        for (iy, c) in col.iter().enumerate() {
                            if *c <= 0.0 {
                                continue;
                            }
                            let t = pz_udfs::math::ln(1.0 + c) / pz_udfs::math::ln(1.0 + max);
                            let (ax, bx) = (self.px(x_edges[ix]), self.px(x_edges[ix + 1]));
                            let (ay, by) = (self.py(y_edges[iy + 1]), self.py(y_edges[iy]));
                            let _ = write!(
                                s,
                                r#"<rect x="{ax:.1}" y="{ay:.1}" width="{:.2}" height="{:.2}" fill="{}"/>"#,
                                bx - ax + 0.3,
                                by - ay + 0.3,
                                shade(t)
                            );
                        }
                    }
                }
                Mark::Line {
                    xs,
                    ys,
                    color,
                    dashed,
                    label,
                } => {
                    let pts: Vec<String> = xs
                        .iter()
                        .zip(ys)
                        .filter(|(x, y)| x.is_finite() && y.is_finite())
                        .map(|(x, y)| format!("{:.1},{:.1}", self.px(*x), self.py(*y)))
                        .collect();
                    let dash = if *dashed {
                        r#" stroke-dasharray="5,4""#
                    } else {
                        ""
                    };
                    let _ = write!(
                        s,
                        r#"<polyline fill="none" stroke="{color}" stroke-width="1.6"{dash} points="{}"/>"#,
                        pts.join(" ")
                    );
                    if let Some(l) = label {
                        legend.push((l.clone(), color.clone()));
                    }
                }
                Mark::Points {
                    xs,
                    ys,
                    color,
                    label,
                } => {
                    for (x, y) in xs.iter().zip(ys) {
                        if x.is_finite() && y.is_finite() {
                            let _ = write!(
                                s,
                                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                                self.px(*x),
                                self.py(*y)
                            );
                        }
                    }
                    if let Some(l) = label {
                        legend.push((l.clone(), color.clone()));
                    }
                }
            }
        }
        s.push_str("</g>");
        // Axes, ticks, labels.
        let _ = write!(
            s,
            r#"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="black"/>"#,
            x1 - x0,
            y0 - y1
        );
        for t in ticks(self.x.0, self.x.1, 6) {
            let x = self.px(t);
            let _ = write!(
                s,
                r#"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{}" stroke="black"/><text x="{x:.1}" y="{}" text-anchor="middle" font-size="11">{}</text>"#,
                y0 + 5.0,
                y0 + 17.0,
                fmt_tick(t)
            );
        }
        for t in ticks(self.y.0, self.y.1, 5) {
            let y = self.py(t);
            let _ = write!(
                s,
                r#"<line x1="{}" y1="{y:.1}" x2="{x0}" y2="{y:.1}" stroke="black"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"#,
                x0 - 5.0,
                x0 - 7.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" font-size="12">{}</text>"#,
            (x0 + x1) / 2.0,
            h - 8.0,
            esc(&self.x_label)
        );
        let _ = write!(
            s,
            r#"<text x="14" y="{:.1}" text-anchor="middle" font-size="12" transform="rotate(-90 14 {:.1})">{}</text>"#,
            (y0 + y1) / 2.0,
            (y0 + y1) / 2.0,
            esc(&self.y_label)
        );
        for (i, (l, c)) in legend.iter().enumerate() {
            let y = y1 + 14.0 + 15.0 * i as f64;
            let _ = write!(
                s,
                r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{c}" stroke-width="2"/><text x="{}" y="{}" font-size="11">{}</text>"#,
                x1 - 120.0,
                x1 - 100.0,
                x1 - 96.0,
                y + 4.0,
                esc(l)
            );
        }
        s.push_str("</svg>");
        s
    }
}

/// White → dark blue.
fn shade(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let r = (230.0 * (1.0 - t) + 8.0 * t) as u8;
    let g = (240.0 * (1.0 - t) + 48.0 * t) as u8;
    let b = (250.0 * (1.0 - t) + 107.0 * t) as u8;
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 3.0, 6), vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]);
        assert_eq!(fmt_tick(0.25), "0.25");
        let mut c = Chart::new("t", "z", "n", (0.0, 1.0), (0.0, 1.0));
        c.line(vec![0.0, 1.0], vec![0.0, 1.0], PALETTE[0], Some("a<b"));
        let svg = c.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>") && svg.contains("a&lt;b"));
    }
}
