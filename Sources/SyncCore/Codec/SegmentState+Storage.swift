/// The stored form of a segment (decision 43): its canonical encoding,
/// LZ4-compressed when that makes it smaller. The canonical bytes stay the
/// measure of equality (their first byte, the format version, is 1); a stored
/// form whose first byte is 2 is `2, varint(canonical count), LZ4 block`.
/// Compression is deterministic, so equal states still store as equal bytes.
extension SegmentState {
    private static let compressedFormat: UInt8 = 2
    /// Below this a segment is a creation record and a few short fields, and
    /// the block's tokens cost about what it would save.
    private static let smallestCompressed = 128

    /// The stored form of a canonical encoding: compressed when smaller, else as it is.
    public static func storedBytes(canonical: [UInt8]) -> [UInt8] {
        guard canonical.count >= smallestCompressed, canonical.count <= LZ4Block.maximumInput else { return canonical }
        let block = LZ4Block.compress(canonical)
        var writer = BinaryWriter(capacity: block.count + 6)
        writer.byte(compressedFormat)
        writer.varint(canonical.count)
        guard writer.bytes.count + block.count < canonical.count else { return canonical }
        writer.raw(block)
        // Read back before it is kept: a compressor fault must cost bytes, never
        // a row the device cannot read (its store would have to be rebuilt).
        guard (try? canonicalBytes(stored: writer.bytes)) == canonical else { return canonical }
        return writer.bytes
    }

    /// The canonical encoding inside a stored form.
    public static func canonicalBytes(stored: [UInt8]) throws(SyncCoreError) -> [UInt8] {
        guard stored.first == compressedFormat else { return stored }  // format 1 is canonical already
        var reader = BinaryReader(stored)
        _ = try? reader.byte()
        // The reader's own errors speak of messages on the wire; this is a stored row.
        guard let count = try? reader.varint(), count <= UInt64(LZ4Block.maximumInput) else {
            throw LZ4Block.damaged("its size is missing or too large")
        }
        return try LZ4Block.decompress(stored[reader.offset...], count: Int(count))
    }
}
