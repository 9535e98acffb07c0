//! Shared helpers for hallmark's benchmark binaries: the test photo set, attacks and quality
//! metrics. Everything seeded, so runs are reproducible.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, RgbImage, imageops::FilterType};
use rand::{Rng, SeedableRng, rngs::StdRng};

pub fn photos_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/photos")
}

/// The benchmark set: the bundled photographs (512 px to 1080p), a 4K version of the 1080p
/// photo (Lanczos upscale: a stand-in for a 4K render), and two procedural renders.
pub fn image_set() -> Vec<(String, DynamicImage)> {
    // `--images DIR`: every PNG/JPEG in DIR instead (a held-out set), nothing added.
    let args: Vec<String> = std::env::args().collect();
    if let Some(dir) = args
        .iter()
        .position(|a| a == "--images")
        .and_then(|i| args.get(i + 1))
    {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .expect("--images DIR")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
            .collect();
        names.sort();
        return names
            .into_iter()
            .filter_map(|p| {
                let img = image::open(&p).ok()?;
                Some((p.file_stem()?.to_string_lossy().into_owned(), img))
            })
            .collect();
    }
    let mut out = vec![];
    let mut names: Vec<_> = std::fs::read_dir(photos_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    names.sort();
    for p in names {
        let img = image::open(&p).unwrap();
        out.push((p.file_stem().unwrap().to_string_lossy().into_owned(), img));
    }
    if let Some((_, fhd)) = out.iter().find(|(n, _)| n.contains("1920x1080")) {
        let uhd = fhd.resize_exact(3840, 2160, FilterType::Lanczos3);
        out.push(("p06_upscaled_3840x2160".into(), uhd));
    }
    out.push((
        "render_sky_1280x720".into(),
        DynamicImage::ImageRgb8(render(1280, 720, 1)),
    ));
    out.push((
        "render_scene_2048x1536".into(),
        DynamicImage::ImageRgb8(render(2048, 1536, 2)),
    ));
    out
}

/// A procedural "render": sky gradient, soft hills, a sun disc, fine grain.
pub fn render(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = StdRng::seed_from_u64(seed);
    let phase: f32 = rng.r#gen::<f32>() * 6.0;
    RgbImage::from_fn(w, h, |x, y| {
        let fx = x as f32 / w as f32;
        let fy = y as f32 / h as f32;
        let hill = 0.6 + 0.1 * (fx * 7.0 + phase).sin() + 0.05 * (fx * 23.0).sin();
        let grain = ((x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663)) % 17) as f32 - 8.0;
        let (r, g, b) = if fy > hill {
            let t = (fy - hill) * 3.0;
            (
                40.0 + 60.0 * t + grain * 2.0,
                90.0 + 50.0 * t + grain * 2.0,
                30.0 + grain,
            )
        } else {
            let d = ((fx - 0.7).powi(2) + (fy - 0.25).powi(2)).sqrt();
            let sun = if d < 0.06 { 120.0 } else { 0.0 };
            (
                90.0 + 80.0 * fy + sun,
                140.0 + 60.0 * fy + sun,
                230.0 - 20.0 * fy + sun * 0.2,
            )
        };
        image::Rgb([
            r.clamp(0.0, 255.0) as u8,
            g.clamp(0.0, 255.0) as u8,
            b.clamp(0.0, 255.0) as u8,
        ])
    })
}

pub fn jpeg(img: &DynamicImage, q: u8, subsample_420: bool) -> DynamicImage {
    let rgb = img.to_rgb8();
    let mut out = vec![];
    let mut enc = jpeg_encoder::Encoder::new(&mut out, q);
    enc.set_sampling_factor(if subsample_420 {
        jpeg_encoder::SamplingFactor::F_2_2
    } else {
        jpeg_encoder::SamplingFactor::F_1_1
    });
    enc.encode(
        rgb.as_raw(),
        rgb.width() as u16,
        rgb.height() as u16,
        jpeg_encoder::ColorType::Rgb,
    )
    .unwrap();
    image::load_from_memory(&out).unwrap()
}

pub fn webp_lossy(img: &DynamicImage, q: f32) -> DynamicImage {
    let rgb = img.to_rgb8();
    let enc = webp::Encoder::from_rgb(rgb.as_raw(), rgb.width(), rgb.height());
    let mem = enc.encode(q);
    image::load_from_memory(&mem).unwrap()
}

pub fn map_rgb(img: &DynamicImage, f: impl Fn(f32) -> f32) -> DynamicImage {
    let mut rgb = img.to_rgb8();
    for p in rgb.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = f(f32::from(*c)).round().clamp(0.0, 255.0) as u8;
        }
    }
    DynamicImage::ImageRgb8(rgb)
}

pub fn contrast(img: &DynamicImage, k: f32) -> DynamicImage {
    let g = img.to_luma8();
    let mean = g.pixels().map(|p| f32::from(p.0[0])).sum::<f32>() / (g.width() * g.height()) as f32;
    map_rgb(img, |v| mean + (v - mean) * k)
}

pub fn saturation(img: &DynamicImage, k: f32) -> DynamicImage {
    let mut rgb = img.to_rgb8();
    for p in rgb.pixels_mut() {
        let [r, g, b] = p.0.map(f32::from);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        p.0 = [r, g, b].map(|c| (y + (c - y) * k).round().clamp(0.0, 255.0) as u8);
    }
    DynamicImage::ImageRgb8(rgb)
}

pub fn noise(img: &DynamicImage, sigma: f32, seed: u64) -> DynamicImage {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rgb = img.to_rgb8();
    for p in rgb.pixels_mut() {
        for c in p.0.iter_mut() {
            // Box-Muller.
            let u1: f32 = rng.r#gen::<f32>().max(1e-9);
            let u2: f32 = rng.r#gen();
            let n = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
            *c = (f32::from(*c) + sigma * n).round().clamp(0.0, 255.0) as u8;
        }
    }
    DynamicImage::ImageRgb8(rgb)
}

pub fn resize(img: &DynamicImage, s: f64) -> DynamicImage {
    let w = ((img.width() as f64 * s).round() as u32).max(1);
    let h = ((img.height() as f64 * s).round() as u32).max(1);
    img.resize_exact(w, h, FilterType::Lanczos3)
}

/// Centre crop keeping `area` of the image.
pub fn crop_centre(img: &DynamicImage, area: f64) -> DynamicImage {
    let k = area.sqrt();
    let (w, h) = (img.width(), img.height());
    let (cw, ch) = ((w as f64 * k) as u32, (h as f64 * k) as u32);
    img.crop_imm((w - cw) / 2, (h - ch) / 2, cw, ch)
}

pub fn crop_corner(img: &DynamicImage, area: f64) -> DynamicImage {
    let k = area.sqrt();
    let (w, h) = (img.width(), img.height());
    img.crop_imm(0, 0, (w as f64 * k) as u32, (h as f64 * k) as u32)
}

/// Rotate by `deg` (bilinear) and crop the largest centred axis-aligned rectangle with no
/// border.
pub fn rotate_crop(img: &DynamicImage, deg: f64) -> DynamicImage {
    let src = img.to_rgb8();
    let (w, h) = (src.width() as f64, src.height() as f64);
    let t = deg.to_radians();
    let (c, s) = (t.cos(), t.sin());
    // Largest inscribed rectangle of the same aspect (conservative formula).
    let k = 1.0 / (c.abs() + s.abs() * (w.max(h) / w.min(h)));
    let (ow, oh) = ((w * k).floor() as u32, (h * k).floor() as u32);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let out = RgbImage::from_fn(ow, oh, |x, y| {
        let dx = x as f64 + 0.5 - ow as f64 / 2.0;
        let dy = y as f64 + 0.5 - oh as f64 / 2.0;
        let sx = c * dx + s * dy + cx - 0.5;
        let sy = -s * dx + c * dy + cy - 0.5;
        bilinear(&src, sx, sy)
    });
    DynamicImage::ImageRgb8(out)
}

fn bilinear(img: &RgbImage, x: f64, y: f64) -> image::Rgb<u8> {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (tx, ty) = (x - x0 as f64, y - y0 as f64);
    let px = |xx: i64, yy: i64| {
        img.get_pixel(xx.clamp(0, w - 1) as u32, yy.clamp(0, h - 1) as u32)
            .0
    };
    let (a, b, c, d) = (
        px(x0, y0),
        px(x0 + 1, y0),
        px(x0, y0 + 1),
        px(x0 + 1, y0 + 1),
    );
    let mut o = [0u8; 3];
    for i in 0..3 {
        let v = f64::from(a[i]) * (1.0 - tx) * (1.0 - ty)
            + f64::from(b[i]) * tx * (1.0 - ty)
            + f64::from(c[i]) * (1.0 - tx) * ty
            + f64::from(d[i]) * tx * ty;
        o[i] = v.round().clamp(0.0, 255.0) as u8;
    }
    image::Rgb(o)
}

/// Mean SSIM on luminance, 8x8 windows with stride 4 (Wang et al. constants).
pub fn ssim(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (x, y): (GrayImage, GrayImage) = (a.to_luma8(), b.to_luma8());
    let (w, h) = (x.width().min(y.width()), x.height().min(y.height()));
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let mut total = 0.0;
    let mut n = 0usize;
    for by in (0..h.saturating_sub(8)).step_by(4) {
        for bx in (0..w.saturating_sub(8)).step_by(4) {
            let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for j in 0..8 {
                for i in 0..8 {
                    let p = f64::from(x.get_pixel(bx + i, by + j).0[0]);
                    let q = f64::from(y.get_pixel(bx + i, by + j).0[0]);
                    sx += p;
                    sy += q;
                    sxx += p * p;
                    syy += q * q;
                    sxy += p * q;
                }
            }
            let m = 64.0;
            let (mx, my) = (sx / m, sy / m);
            let (vx, vy, cxy) = (sxx / m - mx * mx, syy / m - my * my, sxy / m - mx * my);
            total += ((2.0 * mx * my + c1) * (2.0 * cxy + c2))
                / ((mx * mx + my * my + c1) * (vx + vy + c2));
            n += 1;
        }
    }
    total / n.max(1) as f64
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A keystone: the picture as photographed at an angle, its top edge `k` (0.1 = 10%)
/// narrower than its bottom (each row scaled about the centre, linearly from the top),
/// then cropped to the widest rectangle inside the trapezoid, so no border shows.
pub fn keystone(img: &DynamicImage, k: f64) -> DynamicImage {
    let src = img.to_rgb8();
    let (w, h) = (f64::from(src.width()), f64::from(src.height()));
    let ow = ((1.0 - k) * w).floor().max(1.0) as u32;
    let cx = w / 2.0;
    let out = RgbImage::from_fn(ow, src.height(), |x, y| {
        let row = 1.0 - k * (1.0 - (f64::from(y) + 0.5) / h);
        let shown = cx - f64::from(ow) / 2.0 + f64::from(x) + 0.5;
        bilinear(&src, cx + (shown - cx) / row - 0.5, f64::from(y))
    });
    DynamicImage::ImageRgb8(out)
}

/// Pictures of the classes a classical mark finds hard, generated (seeded): smooth ones
/// (a gradient wallpaper, a studio backdrop, a soft-focus photo) at 1920x1080, dense
/// texture (brick, foliage-like noise, a woven fabric) at 1024x768, flat synthetic images
/// (an app screenshot, a bar chart) at 1280x800. Each is (class, name, picture).
pub fn hard_classes(set: &[(String, DynamicImage)]) -> Vec<(&'static str, String, DynamicImage)> {
    let mut rng = StdRng::seed_from_u64(4242);
    let mut out = vec![];
    let grain = |img: RgbImage, rng: &mut StdRng, s: f32| {
        let seed: u64 = rng.r#gen();
        noise(&DynamicImage::ImageRgb8(img), s, seed)
    };
    // Smooth.
    let (w, h) = (1920u32, 1080u32);
    let wall = RgbImage::from_fn(w, h, |x, y| {
        let t =
            (f32::from(x as u16) / w as f32 * 0.7 + f32::from(y as u16) / h as f32 * 0.3).min(1.0);
        image::Rgb([
            (40.0 + 180.0 * t) as u8,
            (90.0 + 60.0 * t) as u8,
            (200.0 - 120.0 * t) as u8,
        ])
    });
    out.push((
        "smooth",
        "gradient wallpaper".to_string(),
        grain(wall, &mut rng, 1.0),
    ));
    let studio = RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 / w as f32 - 0.5, y as f32 / h as f32 - 0.4);
        let v = 200.0 - 150.0 * (dx * dx + dy * dy).sqrt();
        image::Rgb([v as u8, (v * 0.97) as u8, (v * 0.92) as u8])
    });
    out.push((
        "smooth",
        "studio backdrop".to_string(),
        grain(studio, &mut rng, 1.5),
    ));
    if let Some((_, p)) = set.iter().find(|(n, _)| n.starts_with("p01")) {
        let soft = p.resize_to_fill(w, h, FilterType::Lanczos3).blur(4.0);
        out.push(("smooth", "soft-focus portrait".to_string(), soft));
    }
    // Dense texture.
    let (w, h) = (1024u32, 768u32);
    let brick = RgbImage::from_fn(w, h, |x, y| {
        let row = y / 24;
        let xs = x + if row % 2 == 1 { 24 } else { 0 };
        let mortar = y % 24 < 3 || xs % 48 < 3;
        let v = if mortar {
            200
        } else {
            120 + ((xs / 48 + row * 7) % 5) as u8 * 12
        };
        image::Rgb([
            v,
            (u16::from(v) * 6 / 10) as u8,
            (u16::from(v) * 5 / 10) as u8,
        ])
    });
    out.push(("texture", "brick".to_string(), grain(brick, &mut rng, 12.0)));
    let foliage = {
        let base = DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, image::Rgb([60, 110, 50])));
        let seed: u64 = rng.r#gen();
        let fine = noise(&base, 40.0, seed).blur(0.8);
        let seed: u64 = rng.r#gen();
        noise(&fine, 15.0, seed)
    };
    out.push(("texture", "foliage".to_string(), foliage));
    let fabric = RgbImage::from_fn(w, h, |x, y| {
        let v = 128.0
            + 50.0 * ((x as f32) * 0.9).sin() * ((y as f32) * 0.35).cos()
            + 40.0 * ((y as f32) * 0.9).sin();
        image::Rgb([
            v.clamp(0.0, 255.0) as u8,
            (v * 0.8).clamp(0.0, 255.0) as u8,
            90,
        ])
    });
    out.push((
        "texture",
        "fabric".to_string(),
        grain(fabric, &mut rng, 6.0),
    ));
    // Flat synthetic.
    let (w, h) = (1280u32, 800u32);
    let mut ui = RgbImage::from_pixel(w, h, image::Rgb([246, 247, 249]));
    for (x0, y0, x1, y1, c) in [
        (0u32, 0u32, 1280u32, 64u32, [32u8, 40, 60]),
        (0, 64, 240, 800, [230, 233, 238]),
        (280, 110, 1240, 300, [255, 255, 255]),
        (280, 330, 750, 760, [255, 255, 255]),
        (780, 330, 1240, 760, [255, 255, 255]),
        (300, 130, 520, 150, [40, 120, 220]),
    ] {
        for y in y0..y1 {
            for x in x0..x1 {
                ui.put_pixel(x, y, image::Rgb(c));
            }
        }
    }
    // Text-like lines.
    for line in 0..40u32 {
        let y = 360 + (line % 20) * 18;
        let x0 = if line < 20 { 300 } else { 800 };
        let len = 120 + rng.gen_range(0..300);
        for yy in y..y + 8 {
            for x in x0..(x0 + len).min(x0 + 420) {
                if (x / 7 + line) % 6 != 0 {
                    ui.put_pixel(x, yy, image::Rgb([70, 74, 84]));
                }
            }
        }
    }
    out.push((
        "flat",
        "app screenshot".to_string(),
        DynamicImage::ImageRgb8(ui),
    ));
    let mut chart = RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    for b in 0..10u32 {
        let top = 700 - rng.gen_range(100..600);
        let x0 = 120 + b * 110;
        for y in top..700 {
            for x in x0..x0 + 70 {
                chart.put_pixel(x, y, image::Rgb([66, 133, 244]));
            }
        }
    }
    for x in 100..1200 {
        chart.put_pixel(x, 700, image::Rgb([0, 0, 0]));
    }
    out.push((
        "flat",
        "bar chart".to_string(),
        DynamicImage::ImageRgb8(chart),
    ));
    // Small.
    for (i, (n, p)) in set.iter().take(6).enumerate() {
        let (sw, sh) = [
            (480u32, 320u32),
            (400, 400),
            (256, 192),
            (320, 480),
            (480, 270),
            (300, 300),
        ][i];
        out.push((
            "small",
            format!("{n} at {sw}x{sh}"),
            p.resize_to_fill(sw, sh, FilterType::Lanczos3),
        ));
    }
    out
}
