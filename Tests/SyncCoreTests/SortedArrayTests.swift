import Testing
@testable import SyncCore

/// The sorted-array helpers the pull uses in place of sets must agree with
/// the set operations they replace, repeats and empty sides included.
struct SortedArrayTests {
    @Test func sortedArraysAgreeWithSets() {
        var random = SplitMix64(seed: 2026)
        for _ in 0..<500 {
            let left = (0..<Int.random(in: 0...12, using: &random)).map { _ in Int.random(in: 0...15, using: &random) }
            let right = (0..<Int.random(in: 0...12, using: &random)).map { _ in Int.random(in: 0...15, using: &random) }
            let sortedLeft = left.sortedUnique()
            let sortedRight = right.sortedUnique()
            #expect(sortedLeft == Set(left).sorted())
            for probe in -1...16 { #expect(sortedLeft.sortedContains(probe) == left.contains(probe)) }

            let split = SortedWalk.split(sortedLeft, sortedRight)
            #expect(split.onlyLeft == Set(left).subtracting(right).sorted())
            #expect(split.both == Set(left).intersection(right).sorted())
            #expect(split.onlyRight == Set(right).subtracting(left).sorted())
            #expect(SortedWalk.union(sortedLeft, sortedRight) == Set(left).union(right).sorted())
        }
    }

    /// A vector's one-scan advance agrees with `contains`, the subscript and
    /// `raise` it stands for, on dots below, at, next to and beyond each top.
    @Test func advanceAgreesWithContainsAndRaise() {
        var random = SplitMix64(seed: 18)
        for _ in 0..<2_000 {
            var vector = VersionVector()
            for _ in 0..<Int(random.next() % 5) {
                vector.raise(ReplicaID(UInt32(random.next() % 6) + 1), to: random.next() % 4 + 1)
            }
            let dot = Dot(replica: ReplicaID(UInt32(random.next() % 7)), counter: random.next() % 7)
            var expected = vector
            let outcome: VersionVector.Advance
            if vector.contains(dot) {
                outcome = .seen
            } else if dot.counter == vector[dot.replica] + 1 {
                expected.raise(dot.replica, to: dot.counter)
                outcome = .raised
            } else {
                outcome = .beyondNext
            }
            var advanced = vector
            #expect(advanced.advance(to: dot) == outcome, "\(vector) \(dot)")
            #expect(advanced == expected)
        }
    }

    /// The memmove insert and remove do what the standard ones do, at every
    /// position, with elements that hold references (strings, arrays), and
    /// leave a shared buffer untouched.
    @Test func movingInsertAndRemoveAgreeWithTheStandardOnes() {
        var random = SplitMix64(seed: 61)
        var ours: [(String, [Int])] = [], standard: [(String, [Int])] = []
        for step in 0..<3_000 {
            let shared = ours  // a copy must not see the change
            if ours.isEmpty || random.next() % 3 != 0 {
                let index = Int(random.next() % UInt64(ours.count + 1))
                let element = ("value \(step) with enough text to be stored apart", [step, step + 1])
                ours.insertMoving(element, at: index)
                standard.insert(element, at: index)
            } else {
                let index = Int(random.next() % UInt64(ours.count))
                let removed = ours.removeMoving(at: index)
                #expect(removed == standard.remove(at: index))
            }
            #expect(ours.elementsEqual(standard) { $0 == $1 })
            #expect(shared.count != ours.count)
        }
    }

    @Test func segmentKeysSortByHouseholdThenPurpose() {
        let first = HouseholdID(high: 1, low: 0), second = HouseholdID(high: 1, low: 1)
        let keys = [SegmentKey(household: second, purpose: .regie), SegmentKey(household: first, purpose: .wmo),
                    SegmentKey(household: first, purpose: .regie), SegmentKey(household: second, purpose: .regie)]
        #expect(keys.sortedUnique() == [SegmentKey(household: first, purpose: .regie), SegmentKey(household: first, purpose: .wmo),
                                        SegmentKey(household: second, purpose: .regie)])
    }
}

/// Accepted ranges built from one sorted list equal the ranges of the
/// grouping first written (a list of dots per segment), in a push's order
/// and in any other.
struct AcceptedRangeTests {
    @Test func sortedRangesEqualTheGroupedOnes() {
        var random = SplitMix64(seed: 404)
        let segments = [Purpose.regie, .wmo, .jw].map { SegmentKey(household: Fixture.household, purpose: $0) }
        for round in 0..<2_000 {
            var accepted: [(SegmentKey, Dot)] = []
            if round % 2 == 0 {
                // A push's shape: segment runs, counters ascending with gaps, sometimes a second replica.
                var counter: UInt64 = 1
                for segment in segments.shuffled(using: &random).prefix(Int(random.next() % 3) + 1) {
                    for _ in 0..<Int(random.next() % 6) {
                        counter += random.next() % 3 == 0 ? 2 : 1
                        let replica = ReplicaID(random.next() % 5 == 0 ? 8 : 7)
                        accepted.append((segment, Dot(replica: replica, counter: counter)))
                    }
                }
            } else {
                // Anything: repeated segments, counters out of order.
                for _ in 0..<Int(random.next() % 10) {
                    accepted.append((segments[Int(random.next() % 3)], Dot(replica: ReplicaID(7), counter: random.next() % 12 + 1)))
                }
            }
            #expect(AcceptedRange.ranges(of: accepted) == AcceptedRange.rangesByGrouping(accepted))
        }
    }
}

extension AcceptedRange {
    /// The grouping as it was first written (a list of dots per segment), the reference `ranges(of:)` must agree with.
    static func rangesByGrouping(_ accepted: [(SegmentKey, Dot)]) -> [AcceptedRange] {
        // Accepted dots come in runs of one segment (a push handles a request's ops segment by
        // segment): a segment's key is hashed once per run, not once per dot.
        var runs: [(segment: SegmentKey, dots: [Dot])] = []
        var runIndex: [SegmentKey: Int] = [:]
        for (segment, dot) in accepted {
            if let last = runs.last, last.segment == segment {
                runs[runs.count - 1].dots.append(dot)
            } else if let index = runIndex[segment] {
                runs[index].dots.append(dot)
            } else {
                runIndex[segment] = runs.count
                runs.append((segment, [dot]))
            }
        }
        var result: [AcceptedRange] = []
        result.reserveCapacity(runs.count)
        for (segment, dots) in runs {
            var list = dots
            // Already in order unless the push absorbed drafts.
            if zip(list, list.dropFirst()).contains(where: { $0 > $1 }) { list.sort() }
            for dot in list {
                if let last = result.last, last.segment == segment, last.replica == dot.replica, last.last + 1 == dot.counter {
                    result[result.count - 1].last = dot.counter
                } else {
                    result.append(AcceptedRange(segment: segment, replica: dot.replica, first: dot.counter, last: dot.counter))
                }
            }
        }
        return result
    }
}
