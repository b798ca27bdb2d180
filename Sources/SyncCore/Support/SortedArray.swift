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
    mutating func insertGrowingByAQuarter(_ element: consuming Element, at index: Int) {
        if count == capacity { reserveCapacity(count + Swift.max(4, count / 4)) }
        insertMoving(element, at: index)
    }

    /// `insert(_:at:)` with the tail moved up by one memmove. The standard
    /// one goes through the generic `replaceSubrange`, a few hundred
    /// instructions even at the end, and the sorted arrays of a state insert
    /// on nearly every merge.
    /// (`consuming`: the element is moved in, where a borrowed one was copied.)
    @inline(__always)
    mutating func insertMoving(_ element: consuming Element, at index: Int) {
        precondition(index >= 0 && index <= count, "Array index out of range")
        append(element)
        guard index < count - 1 else { return }
        withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            let last = buffer.count - 1
            let inserted = (base + last).move()
            (base + index + 1).moveInitialize(from: base + index, count: last - index)  // overlapping: a memmove
            (base + index).initialize(to: inserted)
        }
    }

    /// `remove(at:)` the same way: the tail moves down by one memmove.
    @inline(__always) @discardableResult
    mutating func removeMoving(at index: Int) -> Element {
        precondition(index >= 0 && index < count, "Array index out of range")
        if index < count - 1 {
            withUnsafeMutableBufferPointer { buffer in
                let base = buffer.baseAddress!
                let removed = (base + index).move()
                (base + index).moveInitialize(from: base + index + 1, count: buffer.count - index - 1)
                (base + buffer.count - 1).initialize(to: removed)  // to the end, where removeLast takes it
            }
        }
        return removeLast()
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

    /// Everything either holds, once, in order: a merge of two sorted lists
    /// of unique elements (their concatenation sorted again compared every
    /// pair of neighbours and then sorted the whole). The same walk as
    /// `split`'s, written out: shared through closures, it cost a pull 1.2 %.
    static func union<Element: Comparable>(_ left: [Element], _ right: [Element]) -> [Element] {
        if right.isEmpty { return left }
        if left.isEmpty { return right }
        var result: [Element] = []
        result.reserveCapacity(left.count + right.count)
        var i = 0, j = 0
        while i < left.count, j < right.count {
            if left[i] < right[j] {
                result.append(left[i]); i += 1
            } else if right[j] < left[i] {
                result.append(right[j]); j += 1
            } else {
                result.append(left[i]); i += 1; j += 1
            }
        }
        result += left[i...]
        result += right[j...]
        return result
    }
}
