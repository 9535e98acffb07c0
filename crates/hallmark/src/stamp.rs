//! One-pass stamping: decode once, embed the watermark, encode once, sign a manifest that
//! records the generation and binds the watermark (soft binding).

use hallmark_c2pa::{Embedding, ManifestSpec, Model, SigningCredential, SoftBinding};
use hallmark_core::{KeyId, Payload, WatermarkKey};
use hallmark_image::{Detector, EmbedParams, EmbedReport, ImageMark, SOFT_BINDING_ALG};
use sha2::{Digest, Sha256};

use crate::{
    Error,
    io::{self, EncodeOptions, Format, Limits},
};

/// Everything needed to stamp images. Build once, stamp many (it is `Sync`).
pub struct Stamper {
    mark: ImageMark,
    detector: Detector,
    key_id: KeyId,
    signer: SigningCredential,
    /// The generating model recorded in the manifest.
    pub model: Option<Model>,
    /// What else every manifest says: a c2patool-style definition, a parent and other
    /// ingredients, resources, the source type. `stamp` sets the model, the soft binding,
    /// the watermark action and the input as parent asset itself.
    pub manifest: ManifestSpec,
    /// Decoding limits.
    pub limits: Limits,
    /// JPEG quality override (default: the input's estimated quality).
    pub jpeg_quality: Option<u8>,
    /// Read the watermark back from the encoded output before signing (default `true`):
    /// decodes the output and runs the detector, which looks at the geometry the mark was
    /// embedded in first (about 16 ms for a 1080p image after the decode; the full search
    /// only if that fails), and
    /// re-embeds with [`EmbedParams::reinforced`] when it does not read (see
    /// [`mark_encoded`]). See [`Stamped::watermark_readable`].
    pub check_readback: bool,
    /// Further checks of the output when `check_readback` is on (default: [`Checks`]'s,
    /// the mark must survive a WebP q50 round trip).
    pub checks: Checks,
    /// The output's format (default `None`: the input's). A GIF input can be stamped into
    /// PNG this way; GIF output is refused (palette quantisation would erase the mark).
    pub output_format: Option<Format>,
}

impl std::fmt::Debug for Stamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stamper")
            .field("key_id", &self.key_id)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Stamper {
    /// A stamper with default embedding parameters.
    pub fn new(watermark: &WatermarkKey, signer: SigningCredential) -> Self {
        Stamper {
            mark: ImageMark::new(watermark, EmbedParams::default()),
            detector: Detector::new(watermark),
            key_id: watermark.id(),
            signer,
            model: None,
            manifest: ManifestSpec::default(),
            limits: Limits::default(),
            jpeg_quality: None,
            check_readback: true,
            checks: Checks::default(),
            output_format: None,
        }
    }

    /// The signing credential (the ledger signs with it too).
    pub fn signer(&self) -> &SigningCredential {
        &self.signer
    }
}

/// The result of [`stamp`].
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Stamped {
    /// The stamped file's bytes.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// The C2PA manifest store embedded in them (`application/c2pa` bytes): what a
    /// soft-binding registry keeps so that a stripped copy can get its manifest back.
    #[serde(skip)]
    #[schemars(skip)]
    pub manifest_store: Vec<u8>,
    /// Its format (the input's, or [`Stamper::output_format`]).
    pub format: Format,
    /// The watermark payload (the image's ID).
    pub payload: Payload,
    /// The public ID of the watermark key.
    pub key_id: KeyId,
    /// PSNR of the watermark, dB.
    pub psnr: f64,
    /// Whether the detector reads the payload back from the encoded output (`None` when
    /// [`Stamper::check_readback`] is off). `false` means the picture left the mark too
    /// little room (dense texture everywhere, or a very small or flat image): the file still
    /// carries the signed manifest, but a copy stripped of its metadata would not be
    /// recognised.
    pub watermark_readable: Option<bool>,
    /// Whether the watermark in the output survives a lossy WebP round trip (see
    /// [`Stamper::checks`]; `None` when not checked).
    pub watermark_survives_webp: Option<bool>,
    /// Whether the watermark was re-embedded stronger (see [`mark_encoded`]) because the
    /// first embedding did not read back or did not survive the checks.
    pub watermark_reinforced: bool,
    /// Label of the new C2PA manifest.
    pub manifest_id: String,
    /// SHA-256 of the input, hex.
    pub input_sha256: String,
    /// SHA-256 of the output, hex.
    pub output_sha256: String,
    /// The watermark ID the input's own manifest bound, when the input was already stamped
    /// (an img2img output, a re-export): the new mark replaces it in the pixels, and the old
    /// manifest stays as the new one's parent ingredient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_watermark: Option<Payload>,
    /// What of the manifest definition was not used (see [`hallmark_c2pa::Signed::warnings`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Stamps one image: watermark carrying `payload` (random when `None`) plus a signed C2PA
/// manifest that declares the AI generation and binds the watermark.
///
/// # Errors
/// [`Error::Decode`] for unreadable input, [`Error::Unsupported`] for GIF (palette
/// quantisation would erase the mark), [`Error::Watermark`] for images under 128 pixels a
/// side, [`Error::C2pa`] when signing fails.
pub fn stamp(input: &[u8], s: &Stamper, payload: Option<Payload>) -> Result<Stamped, Error> {
    stamp_as(input, s, payload, s.output_format)
}

/// [`stamp`] into `format` (`None`: the input's), whatever [`Stamper::output_format`] says:
/// for a stamper shared between threads that write different formats.
///
/// # Errors
/// As [`stamp`].
pub fn stamp_as(
    input: &[u8],
    s: &Stamper,
    payload: Option<Payload>,
    format: Option<Format>,
) -> Result<Stamped, Error> {
    let mut decoded = io::decode(input, &s.limits)?;
    if let Some(f) = format {
        decoded.format = f;
    }
    let payload = payload.unwrap_or_else(Payload::random);
    let marked = mark_encoded(MarkRequest {
        input,
        decoded,
        mark: &s.mark,
        read_back: s.check_readback.then_some(&s.detector),
        payload,
        encode: EncodeOptions {
            jpeg_quality: s.jpeg_quality,
        },
        checks: s.checks,
        limits: &s.limits,
    })?;
    let watermark_reinforced = marked.reinforced;
    let (encoded, format, report, watermark_readable, watermark_survives_webp) = (
        marked.bytes,
        marked.format,
        marked.report,
        marked.readable,
        marked.survives_webp,
    );
    let spec = ManifestSpec {
        title: None,
        model: s.model.clone(),
        soft_bindings: vec![SoftBinding {
            alg: SOFT_BINDING_ALG.to_string(),
            value: payload.0.to_be_bytes().to_vec(),
        }],
        watermarked: true,
        parent_asset: Some(input.to_vec()),
        ..s.manifest.clone()
    };
    let signed = hallmark_c2pa::sign(
        &s.signer,
        &spec,
        format.mime(),
        &encoded,
        Embedding::Embedded,
    )?;
    Ok(Stamped {
        previous_watermark: crate::verify::bound_watermark(input),
        output_sha256: hex::encode(Sha256::digest(&signed.asset)),
        input_sha256: hex::encode(Sha256::digest(input)),
        bytes: signed.asset,
        manifest_store: signed.manifest_store,
        format,
        payload,
        key_id: report.key_id,
        psnr: report.psnr,
        watermark_readable,
        watermark_survives_webp,
        watermark_reinforced,
        manifest_id: signed.manifest_id,
        warnings: signed.warnings,
    })
}

/// A watermarked file made by [`mark_encoded`].
#[derive(Clone, Debug)]
pub struct MarkedFile {
    /// The encoded file (the input's format, ICC and EXIF).
    pub bytes: Vec<u8>,
    /// Its format.
    pub format: Format,
    /// What the embedding did (of the version kept).
    pub report: EmbedReport,
    /// Whether the mark reads back from `bytes` (`None` when not checked).
    pub readable: Option<bool>,
    /// Whether the mark in `bytes` survives the lossy WebP round trip of
    /// [`Checks::webp_quality`] (`None` when not checked, or when it did not read back at all).
    pub survives_webp: Option<bool>,
    /// Whether the kept version is one of the reinforced re-embeddings.
    pub reinforced: bool,
}

/// Pixels watermarked by [`mark_pixels`].
#[derive(Clone, Debug)]
pub struct MarkedPixels {
    /// The watermarked image.
    pub image: image::DynamicImage,
    /// What the embedding did (of the version kept).
    pub report: EmbedReport,
    /// Whether the mark reads back from `image` (`None` when not checked).
    pub readable: Option<bool>,
    /// As [`MarkedFile::survives_webp`].
    pub survives_webp: Option<bool>,
    /// Whether the kept version is one of the reinforced re-embeddings.
    pub reinforced: bool,
}

/// What [`mark_encoded`] and [`mark_pixels`] check before keeping an embedding (given a
/// detector), beyond reading the mark back from the output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Checks {
    /// Quality of a lossy WebP round trip (libwebp, the codec platforms re-encode uploads
    /// with) that the mark must survive, read at the embedding geometry (default
    /// `Some(50.0)`, the harshest web re-encode in the robustness targets). A picture whose
    /// mark does not survive it (mostly flat pictures: sky, walls, studio backdrops, where
    /// the codec keeps little of any fine detail) is embedded again with the stronger
    /// parameters of [`EmbedParams::reinforced`], which stay within a PSNR of 40 dB and an
    /// SSIM of 0.98. Costs a WebP encode, a decode and a detection at the embedding geometry
    /// per image, mostly the encode (of the top-left quarter only, for pictures of a
    /// megapixel or more where the mark reads there: see [`survives_webp`]): measured on one
    /// core here, a 1080p stamp 121 -> 170 ms, label-style throughput at 640x480 20.4 ->
    /// 12.6 images/s. `None` skips it (the default in a build without the `webp-check`
    /// feature, which needs libwebp and a C compiler).
    pub webp_quality: Option<f32>,
    /// libwebp effort of that round trip, 0 (fastest) to 6 (default 4, libwebp's and
    /// cwebp's own default). The faster efforts quantise differently and miss damage the
    /// default does: checked at 0 and 2, the WebP q50 row of the benchmark (15 keys) was
    /// 130 and 131 of 135 against 135 at 4.
    pub webp_method: u8,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            webp_quality: cfg!(feature = "webp-check").then_some(50.0),
            webp_method: 4,
        }
    }
}

impl Checks {
    /// No check beyond the read-back.
    pub fn none() -> Self {
        Checks {
            webp_quality: None,
            ..Checks::default()
        }
    }
}

/// Whether the mark carrying `payload` survives a lossy WebP round trip of `image` at
/// `quality` (0-100) and libwebp effort `method` (0 fastest .. 6), read at the embedding
/// geometry ([`Detector::detect_untouched`]: a re-encode moves no pixel). `None` when WebP
/// cannot hold the picture (over 16383 pixels a side) or the encoder fails.
///
/// Pictures of [`CORNER_CHECK_MIN_PIXELS`] or more are first checked on their top-left
/// quarter ([`webp_corner_survives`]: a quarter of the encode): when the mark reads there,
/// it reads in the whole; only when it does not is the whole picture round-tripped
/// ([`webp_whole_survives`]).
pub fn survives_webp(
    detector: &Detector,
    image: &image::DynamicImage,
    payload: Payload,
    quality: f32,
    method: u8,
) -> Option<bool> {
    if u64::from(image.width()) * u64::from(image.height()) >= CORNER_CHECK_MIN_PIXELS
        && webp_corner_survives(detector, image, payload, quality, method) == Some(true)
    {
        return Some(true);
    }
    webp_whole_survives(detector, image, payload, quality, method)
}

/// Pictures at least this large (pixels) are checked on a corner first (see
/// [`survives_webp`]); below it the whole round trip is cheap and the corner holds too few
/// tiles to say much.
pub const CORNER_CHECK_MIN_PIXELS: u64 = 1_000_000;

/// The WebP round trip of the whole picture, read at the embedding geometry (see
/// [`survives_webp`]).
pub fn webp_whole_survives(
    detector: &Detector,
    image: &image::DynamicImage,
    payload: Payload,
    quality: f32,
    method: u8,
) -> Option<bool> {
    let img = webp_round_trip(image, quality, method)?;
    Some(img.is_some_and(|i| detector.detect_untouched(&i).payload == Some(payload)))
}

/// The WebP round trip of the picture's top-left quarter (half the width, half the height:
/// the codec's 16-pixel blocks and the mark's tiles start at the same corner as in the
/// whole picture), read at the whole picture's embedding geometry
/// ([`Detector::detect_untouched_corner`]). `Some(true)` predicts that the whole survives:
/// the corner holds a quarter of the mark's repetitions, so it reads only with margin. On
/// the benchmark it never said "survives" where the whole round trip did not
/// (`image-robustness --only-webp-check`).
pub fn webp_corner_survives(
    detector: &Detector,
    image: &image::DynamicImage,
    payload: Payload,
    quality: f32,
    method: u8,
) -> Option<bool> {
    let (w, h) = (image.width(), image.height());
    let img = webp_round_trip(&top_left_quarter(image), quality, method)?;
    Some(img.is_some_and(|i| detector.detect_untouched_corner(&i, (w, h)).payload == Some(payload)))
}

/// The WebP round trip of the top-left quarter, measured rather than decoded:
/// [`Detector::corner_bit_snr`] of the round-tripped corner for the known `payload` (the
/// coded bits' signal-to-noise ratio scaled to the whole picture).
pub fn webp_corner_snr(
    detector: &Detector,
    image: &image::DynamicImage,
    payload: Payload,
    quality: f32,
    method: u8,
) -> Option<f64> {
    let (w, h) = (image.width(), image.height());
    let img = webp_round_trip(&top_left_quarter(image), quality, method)??;
    detector.corner_bit_snr(&img, (w, h), payload)
}

/// Half the width and half the height, from the top-left corner (where the codec's blocks
/// and the mark's tiles start, as in the whole picture).
fn top_left_quarter(image: &image::DynamicImage) -> image::DynamicImage {
    image.crop_imm(0, 0, image.width().div_ceil(2), image.height().div_ceil(2))
}

/// Encodes with libwebp and decodes with libwebp's own decoder. `None`: WebP cannot hold
/// the picture or the encoder failed; `Some(None)`: the round trip did not decode.
#[cfg(feature = "webp-check")]
fn webp_round_trip(
    image: &image::DynamicImage,
    quality: f32,
    method: u8,
) -> Option<Option<image::DynamicImage>> {
    const WEBP_MAX_SIDE: u32 = 16383;
    if image.width().max(image.height()) > WEBP_MAX_SIDE {
        return None;
    }
    let rgb;
    let enc = match image {
        image::DynamicImage::ImageRgba8(rgba) => {
            webp::Encoder::from_rgba(rgba.as_raw(), rgba.width(), rgba.height())
        }
        other => {
            rgb = other.to_rgb8();
            webp::Encoder::from_rgb(rgb.as_raw(), rgb.width(), rgb.height())
        }
    };
    let mut config = webp::WebPConfig::new().ok()?;
    config.quality = quality.clamp(0.0, 100.0);
    config.method = i32::from(method.min(6));
    let mem = enc.encode_advanced(&config).ok()?;
    // libwebp's own decoder (4x faster here than the pure-Rust one). A round trip it cannot
    // decode counts as the mark not surviving it.
    let Some(d) = webp::Decoder::new(&mem).decode() else {
        return Some(None);
    };
    let (w, h) = (d.width(), d.height());
    Some(if d.is_alpha() {
        image::RgbaImage::from_raw(w, h, d.to_vec()).map(image::DynamicImage::ImageRgba8)
    } else {
        image::RgbImage::from_raw(w, h, d.to_vec()).map(image::DynamicImage::ImageRgb8)
    })
}

/// Built without the `webp-check` feature (no libwebp): the round trip cannot be measured.
#[cfg(not(feature = "webp-check"))]
fn webp_round_trip(
    _image: &image::DynamicImage,
    _quality: f32,
    _method: u8,
) -> Option<Option<image::DynamicImage>> {
    None
}

/// One embedding of the ladder, as checked.
struct Version<T> {
    out: T,
    report: EmbedReport,
    readable: Option<bool>,
    survives_webp: Option<bool>,
    reinforced: bool,
}

/// Embeds with `mark`'s parameters, then, while the output fails the checks, with each of
/// [`EmbedParams::reinforced`] in turn. `make(mark)` embeds into a fresh copy of the
/// picture and returns the output; `view` gives the pixels a reader of that output sees
/// (`None`: it cannot be read). Keeps the first version that reads back and passes the
/// checks; else the first that reads back; else the first.
fn ladder<T>(
    mark: &ImageMark,
    detector: Option<&Detector>,
    payload: Payload,
    checks: Checks,
    mut make: impl FnMut(&ImageMark) -> Result<(T, EmbedReport), Error>,
    view: impl Fn(&T) -> Option<std::borrow::Cow<'_, image::DynamicImage>>,
) -> Result<Version<T>, Error> {
    let (out, report) = make(mark)?;
    let Some(det) = detector else {
        return Ok(Version {
            out,
            report,
            readable: None,
            survives_webp: None,
            reinforced: false,
        });
    };
    let check = |out: &T| -> (bool, Option<bool>) {
        let Some(img) = view(out) else {
            return (false, None);
        };
        let readable = det.detect(&img).payload == Some(payload);
        let webp = match checks.webp_quality {
            Some(q) if readable => survives_webp(det, &img, payload, q, checks.webp_method),
            _ => None,
        };
        (readable, webp)
    };
    let checked = |out: T, report: EmbedReport, reinforced: bool| {
        let (readable, webp) = check(&out);
        Version {
            out,
            report,
            readable: Some(readable),
            survives_webp: webp,
            reinforced,
        }
    };
    let passes = |v: &Version<T>| v.readable == Some(true) && v.survives_webp != Some(false);
    let first = checked(out, report, false);
    if passes(&first) {
        return Ok(first);
    }
    let mut best = first;
    for params in mark.params().reinforced() {
        let (out, report) = make(&mark.with_params(params))?;
        let v = checked(out, report, true);
        if passes(&v) {
            return Ok(v);
        }
        if v.readable == Some(true) && best.readable == Some(false) {
            best = v;
        }
    }
    Ok(best)
}

/// What [`mark_encoded`] marks, and how.
#[derive(Debug)]
pub struct MarkRequest<'a> {
    /// The encoded input file (decoded again for each re-embedding).
    pub input: &'a [u8],
    /// `input` decoded (its pixels and what the encoder keeps: format, ICC profile,
    /// metadata); set `decoded.format` to write another format.
    pub decoded: io::Decoded,
    /// The keyed mark to embed.
    pub mark: &'a ImageMark,
    /// Reads the mark back from the encoded output (and applies [`MarkRequest::checks`]);
    /// `None` skips the read-back and the re-embedding ladder.
    pub read_back: Option<&'a Detector>,
    /// The 64-bit ID the mark carries.
    pub payload: Payload,
    /// How the output is encoded.
    pub encode: EncodeOptions,
    /// Survival checks on the encoded output.
    pub checks: Checks,
    /// Decoding limits for the re-embeddings and the read-back.
    pub limits: &'a Limits,
}

/// Embeds `payload` into the decoded `input`, encodes it like the input, and (given a
/// `read_back` detector) reads the mark back from the encoded bytes and applies `checks` to
/// them. When the mark does not read back, or fails a check, the picture is decoded again from
/// `input` and embedded with the stronger parameters of [`EmbedParams::reinforced`] in turn
/// (full cancellation of the picture's push on each coded bit, then 41 and 40.2 dB with
/// SSIM >= 0.98); the first version that reads back and passes is kept, else the first
/// that reads back, else the first embedding (its `readable` is then `false`). Busy
/// thumbnails and mostly flat pictures are what this rescues; a picture that is texture
/// everywhere stays unreadable.
///
/// # Errors
/// [`Error::Unsupported`] when the output format is GIF (palette quantisation would erase
/// the mark); otherwise as [`ImageMark::embed_dynamic`] and [`io::encode`].
pub fn mark_encoded(req: MarkRequest<'_>) -> Result<MarkedFile, Error> {
    let MarkRequest {
        input,
        mut decoded,
        mark,
        read_back: detector,
        payload,
        encode: opts,
        checks,
        limits,
    } = req;
    if let Some(why) = decoded.format.watermark_refusal() {
        return Err(Error::Unsupported(why.into()));
    }
    let mut first = Some(std::mem::replace(
        &mut decoded.image,
        image::DynamicImage::new_luma8(1, 1),
    ));
    let v = ladder(
        mark,
        detector,
        payload,
        checks,
        |m| {
            let mut image = match first.take() {
                Some(i) => i,
                None => io::decode(input, limits)?.image,
            };
            let report = m.embed_dynamic(&mut image, payload)?;
            Ok((io::encode(&image, &decoded, opts)?, report))
        },
        |bytes| {
            io::decode(bytes, limits)
                .ok()
                .map(|d| std::borrow::Cow::Owned(d.image))
        },
    )?;
    Ok(MarkedFile {
        bytes: v.out,
        format: decoded.format,
        report: v.report,
        readable: v.readable,
        survives_webp: v.survives_webp,
        reinforced: v.reinforced,
    })
}

/// [`mark_encoded`] on pixels, for a caller that encodes the output itself (losslessly:
/// the read-back and the checks run on these pixels): embeds into a copy of `original`,
/// checks, and re-embeds stronger from `original` where needed.
///
/// # Errors
/// As [`ImageMark::embed_dynamic`].
pub fn mark_pixels(
    original: &image::DynamicImage,
    mark: &ImageMark,
    detector: Option<&Detector>,
    payload: Payload,
    checks: Checks,
) -> Result<MarkedPixels, Error> {
    let v = ladder(
        mark,
        detector,
        payload,
        checks,
        |m| {
            let mut image = original.clone();
            let report = m.embed_dynamic(&mut image, payload)?;
            Ok((image, report))
        },
        |img| Some(std::borrow::Cow::Borrowed(img)),
    )?;
    Ok(MarkedPixels {
        image: v.out,
        report: v.report,
        readable: v.readable,
        survives_webp: v.survives_webp,
        reinforced: v.reinforced,
    })
}

/// Whether `detector` finds `payload` in the encoded file `bytes` (what a reader of the
/// output will see, after the encoder's rounding or compression), by the same detection
/// `hallmark image detect` and `verify` run: it tries the untouched geometry first and
/// returns at once when the mark is there.
pub fn read_back(detector: &Detector, bytes: &[u8], limits: &Limits, payload: Payload) -> bool {
    io::decode(bytes, limits)
        .map(|d| detector.detect(&d.image).payload == Some(payload))
        .unwrap_or(false)
}
