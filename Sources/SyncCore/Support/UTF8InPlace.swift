extension String {
    /// Calls `body` with the string's UTF-8 bytes where they lie. A native
    /// string hands them out in place; only a bridged one is copied first.
    /// (`withUTF8` needs a `var`: copying every string for it retained and
    /// released each one, on paths that read every string of a message.)
    @inline(__always)
    func withUTF8InPlace<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        if let result = utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = self
        return copy.withUTF8(body)
    }
}
