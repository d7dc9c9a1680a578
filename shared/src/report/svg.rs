//! Inline SVG charts of the report: small multiples (one chart per bank), so no chart needs a
//! colour to tell its series apart; each line has point markers and each bar its value on
//! hover (`<title>`), and every chart has a table beside it. Coordinates are exact decimals
//! rounded to a tenth of a pixel.

use rust_decimal::Decimal;

use super::html::esc;

/// Width and height of a small chart, in pixels.
pub const W: i64 = 300;
/// Height of a small chart.
pub const H: i64 = 130;
const LEFT: i64 = 44;
const RIGHT: i64 = 8;
const TOP: i64 = 10;
const BOTTOM: i64 = 22;

fn px(v: Decimal) -> String {
    v.round_dp(1).normalize().to_string()
}

/// Maps `v` in `lo..=hi` to the plot's y (top is `hi`).
fn y_of(v: Decimal, lo: Decimal, hi: Decimal) -> Decimal {
    let span = if hi > lo { hi - lo } else { Decimal::ONE };
    let inner = Decimal::from(H - TOP - BOTTOM);
    Decimal::from(TOP) + inner - (v - lo) / span * inner
}

fn x_of(i: usize, n: usize) -> Decimal {
    let inner = Decimal::from(W - LEFT - RIGHT);
    let step = if n > 1 {
        inner / Decimal::from(n - 1)
    } else {
        Decimal::ZERO
    };
    Decimal::from(LEFT) + step * Decimal::from(i as u64)
}

/// The frame of a chart: `<svg>` with its accessible name and description, the axes, the y
/// labels at the bottom and top and the first and last x labels.
fn frame(
    id: &str,
    title: &str,
    desc: &str,
    [lo, hi, first, last]: [&str; 4],
    body: &str,
) -> String {
    let (bottom, right) = (H - BOTTOM, W - RIGHT);
    format!(
        concat!(
            r#"<svg class="chart" id="{id}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-labelledby="{id}-t {id}-d">"#,
            r#"<title id="{id}-t">{title}</title><desc id="{id}-d">{desc}</desc>"#,
            r#"<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>"#,
            r#"<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>"#,
            r#"<text class="tick" x="{lx}" y="{ty}" text-anchor="end">{hi}</text>"#,
            r#"<text class="tick" x="{lx}" y="{by}" text-anchor="end">{lo}</text>"#,
            r#"<text class="tick" x="{left}" y="{xy}">{first}</text>"#,
            r#"<text class="tick" x="{right}" y="{xy}" text-anchor="end">{last}</text>"#,
            "{body}</svg>"
        ),
        id = id,
        w = W,
        h = H,
        title = esc(title),
        desc = esc(desc),
        left = LEFT,
        top = TOP,
        bottom = bottom,
        right = right,
        lx = LEFT - 4,
        ty = TOP + 4,
        by = bottom,
        xy = H - 6,
        hi = esc(hi),
        lo = esc(lo),
        first = esc(first),
        last = esc(last),
        body = body,
    )
}

/// A forecast point: x label, expected value and its interval.
pub type Ahead = (String, Decimal, Option<(Decimal, Decimal)>);

/// A series' points: (x label, value, hover text); `None` values leave a gap.
pub struct Series<'a> {
    /// The points, oldest first.
    pub points: &'a [(String, Option<Decimal>, String)],
    /// Lower and upper end of the y axis, and how to label them.
    pub range: (Decimal, Decimal),
    /// Labels of the y axis ends.
    pub labels: (String, String),
}

impl Series<'_> {
    /// `body` in the frame of this series: its y labels, and its first and last x labels.
    fn frame(&self, id: &str, title: &str, desc: &str, body: &str) -> String {
        let first = self.points.first().map_or("", |p| p.0.as_str());
        let last = self.points.last().map_or("", |p| p.0.as_str());
        frame(
            id,
            title,
            desc,
            [&self.labels.0, &self.labels.1, first, last],
            body,
        )
    }
}

/// A line with a marker at each point (a square marker for points `marked` true).
pub fn line(id: &str, title: &str, desc: &str, s: &Series<'_>, marked: &[bool]) -> String {
    let n = s.points.len();
    let (lo, hi) = s.range;
    let mut path = String::new();
    let mut marks = String::new();
    let mut pen_up = true;
    for (i, (_, v, hover)) in s.points.iter().enumerate() {
        let Some(v) = v else {
            pen_up = true;
            continue;
        };
        let (x, y) = (px(x_of(i, n)), px(y_of(*v, lo, hi)));
        path.push_str(&format!("{}{x},{y} ", if pen_up { "M" } else { "L" }));
        pen_up = false;
        let shape = if marked.get(i).copied().unwrap_or(false) {
            format!(
                r#"<rect class="flag" x="{}" y="{}" width="7" height="7"><title>{}</title></rect>"#,
                px(x_of(i, n) - Decimal::new(35, 1)),
                px(y_of(*v, lo, hi) - Decimal::new(35, 1)),
                esc(hover)
            )
        } else {
            format!(
                r#"<circle class="dot" cx="{x}" cy="{y}" r="2.5"><title>{}</title></circle>"#,
                esc(hover)
            )
        };
        marks.push_str(&shape);
    }
    let body = format!(r#"<path class="line" d="{}"/>{marks}"#, path.trim_end());
    s.frame(id, title, desc, &body)
}

/// Bars from zero, one per point.
pub fn bars(id: &str, title: &str, desc: &str, s: &Series<'_>) -> String {
    let n = s.points.len().max(1);
    let (lo, hi) = s.range;
    let inner = Decimal::from(W - LEFT - RIGHT);
    let slot = inner / Decimal::from(n as u64);
    let width = (slot * Decimal::new(7, 1)).max(Decimal::ONE);
    let base = y_of(lo, lo, hi);
    let mut body = String::new();
    for (i, (_, v, hover)) in s.points.iter().enumerate() {
        let v = v.unwrap_or(Decimal::ZERO);
        let top = y_of(v, lo, hi);
        let x =
            Decimal::from(LEFT) + slot * Decimal::from(i as u64) + (slot - width) / Decimal::TWO;
        body.push_str(&format!(
            r#"<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>"#,
            px(x),
            px(top),
            px(width),
            px((base - top).max(Decimal::ZERO)),
            esc(hover)
        ));
    }
    s.frame(id, title, desc, &body)
}

/// A history line and, after it, forecast points with their interval as a hatched band.
pub fn forecast(
    id: &str,
    title: &str,
    desc: &str,
    history: &[(String, Decimal)],
    ahead: &[Ahead],
    labels: (String, String),
    range: (Decimal, Decimal),
) -> String {
    let n = history.len() + ahead.len();
    let (lo, hi) = range;
    let mut body = String::new();
    let mut path = String::new();
    for (i, (d, v)) in history.iter().enumerate() {
        path.push_str(&format!(
            "{}{},{} ",
            if i == 0 { "M" } else { "L" },
            px(x_of(i, n)),
            px(y_of(*v, lo, hi))
        ));
        body.push_str(&format!(
            r#"<circle class="dot" cx="{}" cy="{}" r="1.8"><title>{} {}</title></circle>"#,
            px(x_of(i, n)),
            px(y_of(*v, lo, hi)),
            esc(d),
            v
        ));
    }
    body.insert_str(
        0,
        &format!(r#"<path class="line" d="{}"/>"#, path.trim_end()),
    );
    let mut band_top = Vec::new();
    let mut band_bottom = Vec::new();
    for (j, (d, v, band)) in ahead.iter().enumerate() {
        let i = history.len() + j;
        let x = px(x_of(i, n));
        if let Some((l, h)) = band {
            band_top.push(format!("{x},{}", px(y_of(*h, lo, hi))));
            band_bottom.push(format!("{x},{}", px(y_of(*l, lo, hi))));
        }
        body.push_str(&format!(
            r#"<rect class="flag" x="{}" y="{}" width="6" height="6"><title>{} forecast {}</title></rect>"#,
            px(x_of(i, n) - Decimal::from(3)),
            px(y_of(*v, lo, hi) - Decimal::from(3)),
            esc(d),
            v
        ));
    }
    if !band_top.is_empty() {
        band_bottom.reverse();
        body.insert_str(
            0,
            &format!(
                r#"<polygon class="band" points="{} {}"/>"#,
                band_top.join(" "),
                band_bottom.join(" ")
            ),
        );
    }
    let first = history.first().map(|p| p.0.as_str()).unwrap_or("");
    let last = ahead
        .last()
        .map(|p| p.0.as_str())
        .or(history.last().map(|p| p.0.as_str()))
        .unwrap_or("");
    frame(id, title, desc, [&labels.0, &labels.1, first, last], &body)
}

/// Horizontal stacked bars: one row per label, segments told apart by their fill pattern and
/// their count written inside.
pub fn stacked(
    id: &str,
    title: &str,
    desc: &str,
    rows: &[(String, Vec<u64>)],
    legend: &[&str],
) -> String {
    let row_h = 22;
    let height = TOP + row_h * rows.len() as i64 + 40;
    let total_max = rows
        .iter()
        .map(|(_, v)| v.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let inner = Decimal::from(W * 2 - 90 - RIGHT);
    let mut body = String::new();
    for (r, (label, values)) in rows.iter().enumerate() {
        let y = TOP + row_h * r as i64;
        body.push_str(&format!(
            r#"<text class="tick" x="84" y="{}" text-anchor="end">{}</text>"#,
            y + 14,
            esc(label)
        ));
        let mut x = Decimal::from(90);
        for (k, v) in values.iter().enumerate() {
            let w = inner * Decimal::from(*v) / Decimal::from(total_max);
            if *v > 0 {
                body.push_str(&format!(
                    r#"<rect class="seg s{k}" x="{}" y="{y}" width="{}" height="16"><title>{}: {} {v}</title></rect>"#,
                    px(x),
                    px(w),
                    esc(label),
                    esc(legend.get(k).copied().unwrap_or(""))
                ));
                if w > Decimal::from(18) {
                    body.push_str(&format!(
                        r#"<text class="seg-label" x="{}" y="{}" text-anchor="middle">{v}</text>"#,
                        px(x + w / Decimal::TWO),
                        y + 12
                    ));
                }
            }
            x += w;
        }
    }
    let ly = TOP + row_h * rows.len() as i64 + 10;
    for (k, name) in legend.iter().enumerate() {
        let lx = 90 + 100 * k as i64;
        body.push_str(&format!(r#"<rect class="seg s{k}" x="{lx}" y="{ly}" width="12" height="12"/><text class="tick" x="{}" y="{}">{}</text>"#, lx + 16, ly + 10, esc(name)));
    }
    let w = W * 2 + 60;
    format!(
        r#"<svg class="chart wide" id="{id}" viewBox="0 0 {w} {height}" width="{w}" height="{height}" role="img" aria-labelledby="{id}-t {id}-d"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>{body}</svg>"#,
        esc(title),
        esc(desc)
    )
}
