import CZlib
import Foundation

/// gzip for HTTP bodies over 1 KiB, both directions (DESIGN §5), through the
/// system zlib. Decompression is bounded so a small bomb cannot exhaust memory.
public enum Gzip {
    public static let threshold = 1024

    public static func compress(_ input: [UInt8], level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        // A window (and hash table) no larger than the body: a typical 4 KiB sync
        // response then sets up ≈ 20 KiB of state instead of ≈ 256 KiB, with the
        // same output size, since the whole body still fits in the window.
        let (windowBits, memoryLevel) = windowSize(for: input.count)
        guard deflateInit2_(&stream, level, Z_DEFLATED, windowBits + 16, memoryLevel, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return input }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        var input = input
        let produced: Int = input.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = inBuffer.baseAddress
                stream.avail_in = UInt32(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = UInt32(outBuffer.count)
                _ = deflate(&stream, Z_FINISH)
                return outBuffer.count - Int(stream.avail_out)
            }
        }
        return Array(output.prefix(produced))
    }

    /// deflate's window bits (9–15) covering `count` bytes plus its lookahead, and a matching memory level.
    static func windowSize(for count: Int) -> (Int32, Int32) {
        var bits: Int32 = 9
        while bits < 15, (1 << bits) < count + 262 { bits += 1 }
        return (bits, max(2, min(8, bits - 6)))
    }

    public struct DecompressionError: Error, Sendable {
        public var tooLarge: Bool
    }

    /// Inflates a gzip stream chunk by chunk, handing each chunk to `consume`,
    /// so a large file never sits in memory whole.
    public static func decompressStream(_ input: [UInt8], chunkSize: Int = 256 * 1024,
                                        _ consume: (ArraySlice<UInt8>) throws -> Void) throws {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DecompressionError(tooLarge: false)
        }
        defer { inflateEnd(&stream) }
        var chunk = [UInt8](repeating: 0, count: max(1024, chunkSize))
        var input = input
        var status: Int32 = Z_OK
        try input.withUnsafeMutableBufferPointer { inBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = UInt32(inBuffer.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { outBuffer in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = UInt32(outBuffer.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return outBuffer.count - Int(stream.avail_out)
                }
                guard status == Z_OK || status == Z_STREAM_END else { throw DecompressionError(tooLarge: false) }
                try consume(chunk[0..<produced])
                if produced == 0 && stream.avail_in == 0 && status != Z_STREAM_END { throw DecompressionError(tooLarge: false) }
            } while status != Z_STREAM_END
        }
    }

    /// Inflates a gzip (or zlib) body of at most `limit` bytes.
    public static func decompress(_ input: [UInt8], limit: Int) throws -> [UInt8] {
        // A gzip trailer ends with the inflated size (mod 2^32). It only sizes
        // the buffer, within the limit, so a false one costs a few more rounds,
        // not memory: a 4 KiB sync response no longer clears 256 KiB first.
        let stated = input.count >= 18 && input[0] == 0x1F && input[1] == 0x8B
            ? input.suffix(4).reversed().reduce(0) { $0 << 8 | Int($1) } : 256 * 1024
        var output: [UInt8] = []
        output.reserveCapacity(min(stated, limit) + 1)
        try decompressStream(input, chunkSize: min(stated, limit, 256 * 1024 - 1) + 1) { chunk in
            output.append(contentsOf: chunk)
            if output.count > limit { throw DecompressionError(tooLarge: true) }
        }
        return output
    }
}
