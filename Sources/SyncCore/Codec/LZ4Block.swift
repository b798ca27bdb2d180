/// LZ4's block format (lz4/doc/lz4_Block_format.md): a greedy compressor and a
/// checked decompressor, in plain Swift because SyncCore takes no dependencies.
/// A device seals each stored segment, so nothing beneath it (file system,
/// disk) can compress the segment afterwards; this is the only chance
/// (decision 43). The blocks follow the format's end rules, so any LZ4 decoder
/// reads them, and the compressor is deterministic: equal input, equal bytes.
enum LZ4Block {
    private static let minimumMatch = 4
    /// The format's end rules: the last five bytes are literals, and no match
    /// starts in the last twelve.
    private static let lastLiterals = 5
    private static let matchStartMargin = 12
    private static let maximumOffset = 65_535

    /// At most this many output bytes per input byte: a 255 length byte adds
    /// 255 bytes of match. A declared size beyond it cannot be honest.
    static let maximumExpansion = 256

    /// Positions are kept as 32-bit numbers (half the table of 64-bit ones).
    static let maximumInput = Int(Int32.max)

    /// Compresses up to `maximumInput` bytes.
    static func compress(_ input: [UInt8]) -> [UInt8] {
        precondition(input.count <= maximumInput, "LZ4Block compresses at most 2 GiB")
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 2 + 16)
        input.withUnsafeBufferPointer { source in
            let count = source.count
            var anchor = 0
            if count > matchStartMargin {
                // One slot per 4-byte prefix hash, holding the last position
                // seen; sized to the input so a small segment clears a small table.
                let hashBits = min(14, max(8, Int.bitWidth - (count - 1).leadingZeroBitCount))
                var table = [Int32](repeating: -1, count: 1 << hashBits)
                table.withUnsafeMutableBufferPointer { table in
                    func slot(_ position: Int) -> Int {
                        Int((load32(source, position) &* 2_654_435_761) >> UInt32(32 - hashBits))
                    }
                    let matchEndLimit = count - lastLiterals
                    let matchStartLimit = count - matchStartMargin
                    var position = 0
                    while position < matchStartLimit {
                        let hashSlot = slot(position)
                        let candidate = Int(table[hashSlot])
                        table[hashSlot] = Int32(position)
                        guard candidate >= 0, position - candidate <= maximumOffset,
                              load32(source, candidate) == load32(source, position) else {
                            position += 1
                            continue
                        }
                        var start = position, from = candidate
                        while start > anchor, from > 0, source[start - 1] == source[from - 1] {
                            start -= 1
                            from -= 1
                        }
                        var end = position + minimumMatch
                        var fromEnd = candidate + minimumMatch
                        while end < matchEndLimit, source[end] == source[fromEnd] {
                            end += 1
                            fromEnd += 1
                        }
                        appendSequence(to: &output, source, literals: anchor..<start, offset: start - from, matchLength: end - start)
                        anchor = end
                        position = end
                        // A position inside the match, so a repeat of its tail is found.
                        if end - 2 < matchStartLimit { table[slot(end - 2)] = Int32(end - 2) }
                    }
                }
            }
            appendSequence(to: &output, source, literals: anchor..<count, offset: 0, matchLength: 0)
        }
        return output
    }

    /// Decompresses a block that must give exactly `count` bytes.
    static func decompress(_ input: ArraySlice<UInt8>, count: Int) throws(SyncCoreError) -> [UInt8] {
        guard count >= 0, count <= input.count * maximumExpansion else {
            throw damaged("its declared size is impossible")
        }
        var failure: SyncCoreError?
        let output = [UInt8](unsafeUninitializedCapacity: count) { target, written in
            input.withUnsafeBufferPointer { source in
                do throws(SyncCoreError) {
                    written = try decode(source, into: target)
                } catch {
                    failure = error
                    written = 0
                }
            }
        }
        if let failure { throw failure }
        return output
    }

    /// Decodes into `target`, which must end up exactly full.
    private static func decode(_ source: UnsafeBufferPointer<UInt8>, into target: UnsafeMutableBufferPointer<UInt8>) throws(SyncCoreError) -> Int {
        var read = 0, written = 0
        func length(startingAt base: Int) throws(SyncCoreError) -> Int {
            var total = base
            while true {
                guard read < source.count else { throw damaged("it ends inside a length") }
                let byte = source[read]
                read += 1
                total += Int(byte)
                guard total <= target.count else { throw damaged("a length runs past its declared size") }
                if byte != 255 { return total }
            }
        }
        while true {
            guard read < source.count else { throw damaged("it ends before its last literals") }
            let token = source[read]
            read += 1
            var literals = Int(token >> 4)
            if literals == 15 { literals = try length(startingAt: 15) }
            guard literals <= source.count - read else { throw damaged("its literals run past its end") }
            guard literals <= target.count - written else { throw damaged("its literals run past its declared size") }
            if literals > 0 {
                (target.baseAddress! + written).initialize(from: source.baseAddress! + read, count: literals)
            }
            read += literals
            written += literals
            if read == source.count { break }  // the last sequence has no match
            guard source.count - read >= 2 else { throw damaged("it ends inside a match offset") }
            let offset = Int(source[read]) | Int(source[read + 1]) << 8
            read += 2
            guard offset > 0, offset <= written else { throw damaged("a match points before its start") }
            var match = Int(token & 15) + minimumMatch
            if token & 15 == 15 { match = try length(startingAt: match) }
            guard match <= target.count - written else { throw damaged("a match runs past its declared size") }
            // Byte by byte: a match may overlap what it writes (offset < length repeats a run).
            var from = written - offset
            for _ in 0..<match {
                target[written] = target[from]
                written += 1
                from += 1
            }
        }
        guard written == target.count else { throw damaged("it is shorter than its declared size") }
        return written
    }

    private static func appendSequence(to output: inout [UInt8], _ source: UnsafeBufferPointer<UInt8>,
                                       literals: Range<Int>, offset: Int, matchLength: Int) {
        let literalCount = literals.count
        let matchCode = max(0, matchLength - minimumMatch)
        output.append(UInt8(min(literalCount, 15) << 4 | min(matchCode, 15)))
        if literalCount >= 15 { appendLength(literalCount - 15, to: &output) }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: source[literals]))
        guard matchLength > 0 else { return }
        output.append(UInt8(truncatingIfNeeded: offset))
        output.append(UInt8(truncatingIfNeeded: offset >> 8))
        if matchCode >= 15 { appendLength(matchCode - 15, to: &output) }
    }

    private static func appendLength(_ length: Int, to output: inout [UInt8]) {
        var left = length
        while left >= 255 {
            output.append(255)
            left -= 255
        }
        output.append(UInt8(left))
    }

    @inline(__always)
    private static func load32(_ source: UnsafeBufferPointer<UInt8>, _ position: Int) -> UInt32 {
        // Little-endian on every machine, so the hash slots, and with them the bytes, are too.
        UInt32(littleEndian: UnsafeRawPointer(source.baseAddress! + position).loadUnaligned(as: UInt32.self))
    }

    static func damaged(_ what: String) -> SyncCoreError {
        SyncCoreError(.malformed, "A stored segment's compressed bytes are not valid (\(what)). A device fetches it again by enrolling again; changes not yet synced are lost.")
    }
}
