/// Helpers for the arrays kept sorted by key in place of dictionaries (log
/// entries, collection items, op verdicts): a dictionary's buckets cost about
/// twice the entries they hold, and these arrays hold most of a plan.
extension Array {
    /// Where an element with `key` is or would go in an array sorted by
    /// `keyOf`. New keys mostly come last, so the end is tried first.
    @inline(__always)
    func sortedPosition<Key: Comparable>(of key: Key, by keyOf: (Element) -> Key) -> Int {
        if let last, keyOf(last) < key { return count }
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if keyOf(self[middle]) < key { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Inserts like `insert(_:at:)`, but a full buffer grows by a quarter, not
    /// double. These arrays only grow and live as long as the process;
    /// doubling leaves a third of them empty on average, a quarter a tenth,
    /// for a few more copies of short arrays.
    @inline(__always)
    mutating func insertGrowingByAQuarter(_ element: Element, at index: Int) {
        if count == capacity { reserveCapacity(count + Swift.max(4, count / 4)) }
        insert(element, at: index)
    }
}
