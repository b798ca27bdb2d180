/// Text read from a message or a stored row: its bytes checked as UTF-8 here,
/// then made into a String without the standard library checking them again.
///
/// Why: every contact note and field value a sync carries is made into a
/// String, and the standard library's check reads a text that is not all
/// ASCII byte by byte (a Dutch note nearly always has an ë or é). That check
/// was a quarter of decoding a request. This one skips ASCII sixteen or eight
/// bytes at a time and checks the rest by the table of well-formed sequences
/// (Unicode §3.9, table 3-7): no overlong forms, no surrogates, nothing above
/// U+10FFFF, no cut-off sequence. `UTF8TextTests` holds it to the standard
/// library's verdict on every short sequence near the edges and on random ones.
enum UTF8Text {
    /// Whether `bytes` are well-formed UTF-8, and whether they are all ASCII.
    static func check(_ bytes: UnsafeBufferPointer<UInt8>) -> (valid: Bool, ascii: Bool) {
        guard let base = bytes.baseAddress else { return (true, true) }
        let count = bytes.count
        let raw = UnsafeRawPointer(base)
        var ascii = true
        var i = 0
        while i < count {
            if i + 16 <= count,
               (raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) | raw.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
                & 0x8080_8080_8080_8080 == 0 {
                i += 16
                continue
            }
            if i + 8 <= count, raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
                continue
            }
            let lead = base[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            ascii = false
            @inline(__always) func continuation(_ offset: Int) -> Bool { base[i + offset] & 0xC0 == 0x80 }
            switch lead {
            case 0xC2...0xDF:
                guard i + 1 < count, continuation(1) else { return (false, false) }
                i += 2
            case 0xE0...0xEF:
                guard i + 2 < count else { return (false, false) }
                let second = base[i + 1]
                // E0 needs A0–BF (no overlong form), ED 80–9F (no surrogate).
                let low: UInt8 = lead == 0xE0 ? 0xA0 : 0x80, high: UInt8 = lead == 0xED ? 0x9F : 0xBF
                guard second >= low, second <= high, continuation(2) else { return (false, false) }
                i += 3
            case 0xF0...0xF4:
                guard i + 3 < count else { return (false, false) }
                let second = base[i + 1]
                // F0 needs 90–BF (no overlong form), F4 80–8F (nothing above U+10FFFF).
                let low: UInt8 = lead == 0xF0 ? 0x90 : 0x80, high: UInt8 = lead == 0xF4 ? 0x8F : 0xBF
                guard second >= low, second <= high, continuation(2), continuation(3) else { return (false, false) }
                i += 4
            default:
                // A continuation byte where a character starts, C0/C1 (overlong), or F5–FF.
                return (false, false)
            }
        }
        return (true, ascii)
    }

    /// The text in `bytes`, or nil when they are not well-formed UTF-8.
    static func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let (valid, ascii) = check(bytes)
        guard valid else { return nil }
        return uncheckedString(bytes, isASCII: ascii)
    }
}

/// The standard library's own constructor for bytes it knows to be UTF-8
/// (`String._uncheckedFromUTF8(_:isASCII:)`): exported for inlined code and
/// so part of its binary interface, but not public in the language. Only
/// `UTF8Text.string`, after its check, may call it: a String of bytes that
/// are not UTF-8 would break the String's own invariants.
@_silgen_name("$sSS18_uncheckedFromUTF8_7isASCIISSSRys5UInt8VG_SbtFZ")
private func uncheckedString(_ input: UnsafeBufferPointer<UInt8>, isASCII: Bool) -> String
