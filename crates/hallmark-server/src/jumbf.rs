//! Just enough JUMBF (ISO/IEC 19566-5) to answer `returnActiveManifest`: a C2PA manifest store
//! is one superbox (`jumb`) whose description box (`jumd`) is followed by one `jumb` per
//! manifest, the active one last. The stored bytes are read defensively: any length that
//! does not fit gives `None`.

/// One box: its type and the byte range of the whole box in `data`.
struct BoxRef {
    kind: [u8; 4],
    start: usize,
    end: usize,
    header: usize,
}

fn read_box(data: &[u8], at: usize) -> Option<BoxRef> {
    let head = data.get(at..at.checked_add(8)?)?;
    let lbox = u32::from_be_bytes(head[0..4].try_into().ok()?) as u64;
    let kind: [u8; 4] = head[4..8].try_into().ok()?;
    let (len, header) = match lbox {
        0 => ((data.len() - at) as u64, 8),
        1 => {
            let x = data.get(at + 8..at.checked_add(16)?)?;
            (u64::from_be_bytes(x.try_into().ok()?), 16)
        }
        n => (n, 8),
    };
    let len = usize::try_from(len).ok()?;
    if len < header {
        return None;
    }
    let end = at.checked_add(len)?;
    (end <= data.len()).then_some(BoxRef {
        kind,
        start: at,
        end,
        header,
    })
}

/// The manifest store `store` with only its active (last) manifest.
pub fn active_only(store: &[u8]) -> Option<Vec<u8>> {
    let outer = read_box(store, 0)?;
    if &outer.kind != b"jumb" {
        return None;
    }
    let mut at = outer.start + outer.header;
    let desc = read_box(store, at)?;
    if &desc.kind != b"jumd" {
        return None;
    }
    at = desc.end;
    let mut last = None;
    while at < outer.end {
        let b = read_box(store, at)?;
        if b.end > outer.end {
            return None;
        }
        if &b.kind == b"jumb" {
            last = Some((b.start, b.end));
        }
        at = b.end;
    }
    let (ls, le) = last?;
    let body_len = (desc.end - desc.start) + (le - ls);
    let total = u32::try_from(8 + body_len).ok()?;
    let mut out = Vec::with_capacity(8 + body_len);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(b"jumb");
    out.extend_from_slice(&store[desc.start..desc.end]);
    out.extend_from_slice(&store[ls..le]);
    Some(out)
}

#[cfg(test)]
mod tests;
