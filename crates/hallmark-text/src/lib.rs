//! hallmark's statistical text watermark (in progress).
#![deny(missing_docs)]
