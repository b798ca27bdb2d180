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
