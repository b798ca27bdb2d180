import Crypto
import Foundation

/// Random secrets and their stored form (DESIGN §6): 256-bit random values,
/// stored only as SHA-256 hashes, compared in constant time.
enum Tokens {
    /// A new 256-bit random token as URL-safe base64 (43 characters), with a prefix naming its kind.
    static func make(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()  // getrandom(2): a CSPRNG
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
        let text = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return "\(prefix)_\(text)"
    }

    static func hash(_ token: String) -> Data {
        Data(SHA256.hash(data: Data(token.utf8)))
    }

    /// Constant-time equality of two hashes.
    static func equal(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
