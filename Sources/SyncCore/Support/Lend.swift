/// Calls `body` with a value where it lies. Read out of an array or a
/// dictionary, or through a pointer, a value is copied (each of its buffers
/// retained, then released) before any call the optimizer cannot see into;
/// lent through `inout` it is not (decision 45). `body` must only read it.
@inline(__always)
func lend<Value, Result, Failure: Error>(_ value: inout Value, _ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
    try body(&value)
}
