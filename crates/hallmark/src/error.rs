//! The facade's error type and the stable, machine-readable codes every front end (the CLI's
//! JSON, the Python exceptions, the server's responses) reports errors by.

/// Errors from the facade, grouped by who is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input image cannot be decoded (empty, truncated, corrupt, unknown).
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// The input image is over the [`crate::io::Limits`] (pixels, dimensions or memory).
    #[error("cannot decode image: {0}")]
    TooLarge(String),
    /// The image codec cannot decode the data (corrupt, or truncated where the format cannot
    /// tell): the codec's error is the source.
    #[error("cannot decode image: corrupt or truncated image")]
    Corrupt(#[source] image::ImageError),
    /// The output cannot be encoded.
    #[error("cannot encode image: {0}")]
    Encode(String),
    /// The encoder failed: its error is the source.
    #[error("cannot encode image")]
    Encoder(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The operation does not apply to this input.
    #[error("{0}")]
    Unsupported(String),
    /// A file cannot be opened or read ([`crate::keys`]): what was being done, with the
    /// path, and the I/O error as the source.
    #[error("{what}")]
    Io {
        /// What failed, such as "cannot open the watermark key keys/watermark.key".
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An input file is not what it should be (a folder, not UTF-8, not a scheme header).
    #[error("{0}")]
    Input(String),
    /// Watermark embedding failed.
    #[error(transparent)]
    Watermark(#[from] hallmark_image::Error),
    /// C2PA signing or verification failed.
    #[error(transparent)]
    C2pa(#[from] hallmark_c2pa::Error),
    /// A key or parameter is malformed.
    #[error(transparent)]
    Parameter(#[from] hallmark_core::Error),
}

/// What kind of failure an error is, as a stable snake_case code: scripts branch on the code,
/// people read the message. New codes may be added; existing ones keep their meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// An input, key or tokenizer file does not exist.
    NotFound,
    /// Reading or writing failed (permissions, a full disk, a vanished folder).
    Io,
    /// The input is empty, corrupt, truncated or not what was expected (not an image, not
    /// UTF-8 text, not JSON).
    InvalidInput,
    /// The input is over a size, pixel or memory limit.
    TooLarge,
    /// The image is too small to carry the watermark.
    TooSmall,
    /// The format or operation is not supported for this input.
    Unsupported,
    /// A key, certificate or trust anchor is missing, malformed or does not match.
    Key,
    /// A parameter or option value is invalid.
    InvalidParameter,
    /// The output exists and replacing it was not asked for (`--force`).
    OutputExists,
    /// Refused to protect a file: writing over an input, through a dangling link, to a
    /// device or socket.
    Refused,
    /// C2PA signing or reading failed.
    C2pa,
    /// The file's manifest is remote and hallmark does not fetch it.
    RemoteManifest,
    /// The output could not be encoded.
    Encode,
    /// Anything else (a bug if it happens: please report it).
    Internal,
}

impl ErrorCode {
    /// The code as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::Io => "io",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::TooSmall => "too_small",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Key => "key",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::OutputExists => "output_exists",
            ErrorCode::Refused => "refused",
            ErrorCode::C2pa => "c2pa",
            ErrorCode::RemoteManifest => "remote_manifest",
            ErrorCode::Encode => "encode",
            ErrorCode::Internal => "internal",
        }
    }

    /// The code of a JSON name (as [`ErrorCode::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        use ErrorCode::*;
        [
            NotFound,
            Io,
            InvalidInput,
            TooLarge,
            TooSmall,
            Unsupported,
            Key,
            InvalidParameter,
            OutputExists,
            Refused,
            C2pa,
            RemoteManifest,
            Encode,
            Internal,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }

    /// The code for an I/O error, by its kind.
    pub fn of_io(e: &std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => ErrorCode::NotFound,
            std::io::ErrorKind::AlreadyExists => ErrorCode::OutputExists,
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                ErrorCode::InvalidInput
            }
            _ => ErrorCode::Io,
        }
    }

    /// The code of the first error in a chain (an error and its sources) that has one: the
    /// facade's and the mark crates' errors and I/O errors. `None` when none does.
    pub fn find(e: &(dyn std::error::Error + 'static)) -> Option<Self> {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(c) = Self::of(err) {
                return Some(c);
            }
            cur = err.source();
        }
        None
    }

    fn of(e: &(dyn std::error::Error + 'static)) -> Option<Self> {
        if let Some(e) = e.downcast_ref::<Error>() {
            return Some(e.code());
        }
        if let Some(e) = e.downcast_ref::<hallmark_c2pa::Error>() {
            return Some(c2pa_code(e));
        }
        if let Some(e) = e.downcast_ref::<hallmark_image::Error>() {
            return Some(image_code(e));
        }
        if e.downcast_ref::<hallmark_text::Error>().is_some() {
            return Some(ErrorCode::InvalidInput);
        }
        if e.downcast_ref::<hallmark_core::Error>().is_some() {
            return Some(ErrorCode::InvalidParameter);
        }
        e.downcast_ref::<std::io::Error>().map(Self::of_io)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn c2pa_code(e: &hallmark_c2pa::Error) -> ErrorCode {
    use hallmark_c2pa::Error as E;
    match e {
        E::Parameter(_) => ErrorCode::InvalidParameter,
        E::Key(_) | E::Crypto(_) => ErrorCode::Key,
        E::Unsupported(_) => ErrorCode::Unsupported,
        E::RemoteManifest(_) => ErrorCode::RemoteManifest,
        _ => ErrorCode::C2pa,
    }
}

fn image_code(e: &hallmark_image::Error) -> ErrorCode {
    use hallmark_image::Error as E;
    match e {
        E::TooSmall { .. } => ErrorCode::TooSmall,
        _ => ErrorCode::InvalidParameter,
    }
}

impl Error {
    /// The message with the messages of its sources, joined by ": " (what `{:#}` prints for
    /// an `anyhow::Error`): for front ends that show one line.
    pub fn message(&self) -> String {
        let mut out = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            let m = e.to_string();
            if !out.ends_with(&m) {
                out.push_str(": ");
                out.push_str(&m);
            }
            cur = e.source();
        }
        out
    }

    /// This error's code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Decode(_) | Error::Corrupt(_) => ErrorCode::InvalidInput,
            Error::TooLarge(_) => ErrorCode::TooLarge,
            Error::Encode(_) | Error::Encoder(_) => ErrorCode::Encode,
            Error::Unsupported(_) => ErrorCode::Unsupported,
            Error::Io { source, .. } => ErrorCode::of_io(source),
            Error::Input(_) => ErrorCode::InvalidInput,
            Error::Watermark(e) => image_code(e),
            Error::C2pa(e) => c2pa_code(e),
            Error::Parameter(_) => ErrorCode::InvalidParameter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_through_a_chain_of_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot stamp a.png")]
        struct Outer(#[source] Error);
        let e = Outer(Error::TooLarge("image is 9x9".into()));
        assert_eq!(ErrorCode::find(&e), Some(ErrorCode::TooLarge));
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert_eq!(ErrorCode::find(&io), Some(ErrorCode::NotFound));
        assert_eq!(ErrorCode::find(&std::fmt::Error), None);
    }

    #[test]
    fn a_codec_failure_keeps_its_source_and_says_it_once() {
        let mut png = vec![];
        image::DynamicImage::new_rgb8(64, 64)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encodes");
        // Damage the compressed pixel data (after the IDAT chunk's type), not the length.
        let idat = png.windows(4).position(|w| w == b"IDAT").expect("has IDAT") + 4;
        for b in &mut png[idat..idat + 8] {
            *b ^= 0x5a;
        }
        let e = crate::io::decode(&png, &crate::io::Limits::default()).expect_err("corrupt");
        let source = std::error::Error::source(&e).expect("the codec's error is kept");
        let detail = source.to_string();
        let message = e.message();
        assert!(message.ends_with(&detail), "{message}");
        assert_eq!(message.matches(&detail).count(), 1, "{message}");
        assert_eq!(e.code(), ErrorCode::InvalidInput);
    }

    #[test]
    fn serialized_codes_are_the_documented_strings() {
        for c in [
            ErrorCode::NotFound,
            ErrorCode::OutputExists,
            ErrorCode::TooLarge,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
