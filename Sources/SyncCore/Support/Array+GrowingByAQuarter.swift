extension Array {
    /// Inserts like `insert(_:at:)`, but a full buffer grows by a quarter, not
    /// double. State arrays (log entries, items, verdicts) only grow and live
    /// as long as the process; doubling leaves a third of them empty on
    /// average, a quarter leaves a tenth, for a few more copies of short arrays.
    @inline(__always)
    mutating func insertGrowingByAQuarter(_ element: Element, at index: Int) {
        if count == capacity { reserveCapacity(count + Swift.max(4, count / 4)) }
        insert(element, at: index)
    }
}
