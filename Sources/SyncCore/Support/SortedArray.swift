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

extension Array where Element: Comparable {
    /// The elements in order, each once.
    func sortedUnique() -> [Element] {
        // Often already so (lists kept in order): one pass instead of a sort and a copy.
        if zip(self, dropFirst()).allSatisfy({ $0 < $1 }) { return self }
        var result: [Element] = []
        result.reserveCapacity(count)
        for element in sorted() where element != result.last { result.append(element) }
        return result
    }

    /// Whether a sorted array holds `element` (a binary search).
    func sortedContains(_ element: Element) -> Bool {
        let index = sortedPosition(of: element) { $0 }
        return index < count && self[index] == element
    }
}

/// Walks two sorted arrays without repeats side by side.
enum SortedWalk {
    /// What only the left holds, what both hold and what only the right holds, each in order.
    static func split<Element: Comparable>(_ left: [Element], _ right: [Element]) -> (onlyLeft: [Element], both: [Element], onlyRight: [Element]) {
        var onlyLeft: [Element] = [], both: [Element] = [], onlyRight: [Element] = []
        both.reserveCapacity(Swift.min(left.count, right.count))
        var i = 0, j = 0
        while i < left.count, j < right.count {
            if left[i] < right[j] {
                onlyLeft.append(left[i]); i += 1
            } else if right[j] < left[i] {
                onlyRight.append(right[j]); j += 1
            } else {
                both.append(left[i]); i += 1; j += 1
            }
        }
        onlyLeft += left[i...]
        onlyRight += right[j...]
        return (onlyLeft, both, onlyRight)
    }
}
