//! JEDEC JEP106 manufacturer codes, which some firmware leaves in a DIMM's `Manufacturer`
//! (`002C0632002C`, `80AD000080AD`, `80CE`): the first byte counts the continuation codes
//! (the bank less one, bit 7 a parity bit), the second is the maker's id in that bank (its
//! parity bit included); Dell appends more bytes (the DRAM chips' maker last). Only the
//! makers seen on server memory are named.

/// `(continuation codes, id)` → name.
const MAKERS: &[(u8, u8, &str)] = &[
    (0, 0x01, "AMD"),
    (0, 0x2C, "Micron Technology"),
    (0, 0x4F, "Transcend"),
    (0, 0x7A, "Apacer"),
    (0, 0x89, "Intel"),
    (0, 0xAD, "SK Hynix"),
    (0, 0xCE, "Samsung"),
    (0, 0xFE, "Elpida"),
    (1, 0x98, "Kingston"),
    (2, 0x9E, "Corsair"),
    (3, 0x0B, "Nanya Technology"),
    (4, 0x43, "Ramaxel Technology"),
    (4, 0xCB, "A-DATA Technology"),
    (4, 0xCD, "G.Skill"),
    (5, 0x9B, "Crucial Technology"),
];

/// Whether a manufacturer string is a code rather than a name: hex digits (an optional
/// `0x`), an even number of them, at least 4, at least one a decimal digit.
pub fn is_code(value: &str) -> bool {
    let v = value.trim();
    let hex = v.strip_prefix("0x").unwrap_or(v);
    hex.len() >= 4
        && hex.len().is_multiple_of(2)
        && hex.chars().all(|c| c.is_ascii_hexdigit())
        && hex.chars().any(|c| c.is_ascii_digit())
}

/// The maker a code names, when it is one of the table's: the first two bytes, bank first
/// (`802C`); failing that, the reversed order some firmware writes (`2C00`).
pub fn manufacturer(value: &str) -> Option<&'static str> {
    if !is_code(value) {
        return None;
    }
    let v = value.trim();
    let hex = v.strip_prefix("0x").unwrap_or(v);
    let byte = |i: usize| {
        hex.get(i * 2..i * 2 + 2)
            .and_then(|b| u8::from_str_radix(b, 16).ok())
    };
    let (first, second) = (byte(0)?, byte(1)?);
    let lookup = |bank: u8, id: u8| {
        MAKERS
            .iter()
            .find(|(b, i, _)| *b == bank & 0x7F && *i == id)
            .map(|(_, _, name)| *name)
    };
    lookup(first, second).or_else(|| (second & 0x7F == 0).then(|| lookup(0, first)).flatten())
}

#[cfg(test)]
mod tests {
    use super::manufacturer;

    #[test]
    fn codes_of_the_fixtures_and_their_variants() {
        for (code, name) in [
            ("002C0632002C", Some("Micron Technology")),
            ("802C", Some("Micron Technology")),
            ("2C00", Some("Micron Technology")),
            ("80AD000080AD", Some("SK Hynix")),
            ("00CE063200CE", Some("Samsung")),
            ("0x80CE", Some("Samsung")),
            ("00CE000080CE", Some("Samsung")),
            ("019804B300AD", Some("Kingston")),
            ("830B", Some("Nanya Technology")),
            ("859B", Some("Crucial Technology")),
            ("7F7F", None),
            ("Samsung", None),
            ("ABCDEF", None),
            ("12", None),
            ("", None),
            ("é0", None),
        ] {
            assert_eq!(manufacturer(code), name, "{code}");
        }
    }
}
