//! PNG charts at a chosen resolution (`--dpi`): a plotters drawing backend that scales every coordinate,
//! stroke and font size by a factor before handing them to the bitmap backend, so that the same chart code
//! draws a 900-pixel-wide chart or a 300-dpi one with the same layout; and the PNG's `pHYs` chunk, so that
//! viewers and typesetters know the resolution.

use plotters::prelude::*;
use plotters::style::{FontDesc, TextStyle};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind};

/// The resolution plotters' pixel sizes are drawn for: a chart W pixels wide is W/96 inches wide.
pub const BASE_DPI: u32 = 96;

/// A backend that draws on `inner` at `scale` times the size it reports.
pub struct Scaled<B: DrawingBackend> {
    inner: B,
    scale: f64,
}

impl<B: DrawingBackend> Scaled<B> {
    /// `inner` is `scale` times larger than the charts that will be drawn on this backend.
    pub fn new(inner: B, scale: f64) -> Scaled<B> {
        Scaled { inner, scale }
    }
    fn at(&self, (x, y): BackendCoord) -> BackendCoord {
        ((x as f64 * self.scale).round() as i32, (y as f64 * self.scale).round() as i32)
    }
    fn stroke<S: BackendStyle>(&self, s: &S) -> Stroke {
        Stroke(s.color(), ((s.stroke_width() as f64 * self.scale).round() as u32).max(1))
    }
}

/// A colour and a stroke width.
struct Stroke(BackendColor, u32);

impl BackendStyle for Stroke {
    fn color(&self) -> BackendColor {
        self.0
    }
    fn stroke_width(&self) -> u32 {
        self.1
    }
}

impl<B: DrawingBackend> DrawingBackend for Scaled<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        let (w, h) = self.inner.get_size();
        ((w as f64 / self.scale).round() as u32, (h as f64 / self.scale).round() as u32)
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }
    fn draw_pixel(&mut self, p: BackendCoord, c: BackendColor) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let (a, b) = (self.at(p), self.at((p.0 + 1, p.1 + 1)));
        self.inner.draw_rect(a, (b.0 - 1, b.1 - 1), &c, true)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let s = self.stroke(style);
        let (a, b) = (self.at(from), self.at(to));
        self.inner.draw_path([a, b], &s)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let s = self.stroke(style);
        let (a, b) = (self.at(upper_left), self.at(bottom_right));
        self.inner.draw_rect(a, b, &s, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let s = self.stroke(style);
        let p: Vec<BackendCoord> = path.into_iter().map(|c| self.at(c)).collect();
        self.inner.draw_path(p, &s)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let s = self.stroke(style);
        let r = (radius as f64 * self.scale).round() as u32;
        self.inner.draw_circle(self.at(center), r, &s, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let s = self.stroke(style);
        let v: Vec<BackendCoord> = vert.into_iter().map(|c| self.at(c)).collect();
        self.inner.fill_polygon(v, &s)
    }
    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let font = FontDesc::new(style.family(), style.size() * self.scale, style.style()).transform(style.transform());
        let scaled = TextStyle { font, color: style.color(), pos: style.anchor() };
        self.inner.draw_text(text, &scaled, self.at(pos))
    }
}

/// Draws `f` into the PNG file `path` for a chart of `size` (in 96-dpi pixels): as it is without `dpi`, else
/// at `dpi / 96` times as many pixels, with the resolution recorded in the file.
pub fn draw_png<F>(path: &std::path::Path, size: (u32, u32), dpi: Option<u32>, f: F) -> anyhow::Result<()>
where
    F: Fn(&DrawingArea<Scaled<BitMapBackend<'_>>, plotters::coord::Shift>) -> Result<(), Box<dyn std::error::Error>>,
{
    let scale = dpi.map_or(1.0, |d| d as f64 / BASE_DPI as f64);
    {
        let pixels = ((size.0 as f64 * scale).round() as u32, (size.1 as f64 * scale).round() as u32);
        let root = Scaled::new(BitMapBackend::new(path, pixels), scale).into_drawing_area();
        f(&root).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let Some(d) = dpi {
        let bytes = std::fs::read(path)?;
        let with = set_png_dpi(&bytes, d).ok_or_else(|| anyhow::anyhow!("{} is not a PNG", path.display()))?;
        std::fs::write(path, with)?;
    }
    Ok(())
}

/// Sets a PNG's resolution: a `pHYs` chunk (pixels per metre) right after its header chunk, replacing any.
pub fn set_png_dpi(png: &[u8], dpi: u32) -> Option<Vec<u8>> {
    const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !png.starts_with(SIG) || png.len() < 33 {
        return None;
    }
    let ppm = (dpi as f64 / 0.0254).round() as u32;
    let mut data = Vec::with_capacity(9);
    data.extend(ppm.to_be_bytes());
    data.extend(ppm.to_be_bytes());
    data.push(1); // the unit is the metre
    let mut chunk = Vec::with_capacity(21);
    chunk.extend(9u32.to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(b"pHYs");
    crc.update(&data);
    chunk.extend(b"pHYs");
    chunk.extend(&data);
    chunk.extend(crc.finalize().to_be_bytes());
    // Walk the chunks: keep all but an old pHYs, insert ours after IHDR.
    let mut out = SIG.to_vec();
    let mut i = SIG.len();
    while i + 12 <= png.len() {
        let len = u32::from_be_bytes(png[i..i + 4].try_into().ok()?) as usize;
        let end = i.checked_add(12 + len).filter(|e| *e <= png.len())?;
        let kind = &png[i + 4..i + 8];
        if kind != b"pHYs" {
            out.extend(&png[i..end]);
        }
        if kind == b"IHDR" {
            out.extend(&chunk);
        }
        i = end;
    }
    (i == png.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws a small chart at `scale` and returns the PNG's (width, height) and bytes.
    fn draw(scale: f64) -> ((u32, u32), Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let size = ((200.0 * scale) as u32, (100.0 * scale) as u32);
        {
            let root = Scaled::new(BitMapBackend::new(&path, size), scale).into_drawing_area();
            assert_eq!(root.dim_in_pixel(), (200, 100), "charts see the logical size");
            root.fill(&WHITE).unwrap();
            root.draw(&Rectangle::new([(10, 10), (60, 40)], RED.filled())).unwrap();
            root.draw(&PathElement::new(vec![(0, 90), (199, 90)], Color::stroke_width(&BLACK, 2))).unwrap();
            root.present().unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        ((w, h), bytes)
    }

    #[test]
    fn a_scaled_chart_has_the_layout_of_the_small_one_at_more_pixels() {
        let ((w1, h1), _) = draw(1.0);
        let ((w3, h3), png) = draw(3.125);
        assert_eq!((w1, h1), (200, 100));
        assert_eq!((w3, h3), (625, 312));
        let with_dpi = set_png_dpi(&png, 300).unwrap();
        let at = with_dpi.windows(4).position(|w| w == b"pHYs").expect("a pHYs chunk");
        assert_eq!(at, 8 + 25 + 4, "right after IHDR");
        let ppm = u32::from_be_bytes(with_dpi[at + 4..at + 8].try_into().unwrap());
        assert_eq!(ppm, 11811, "300 dpi = 11,811 pixels per metre");
        // Setting it again replaces the chunk; a non-PNG is refused.
        let again = set_png_dpi(&with_dpi, 150).unwrap();
        assert_eq!(again.windows(4).filter(|w| *w == b"pHYs").count(), 1);
        assert_eq!(again.len(), with_dpi.len());
        assert!(set_png_dpi(b"not a png", 300).is_none());
    }
}
