import Foundation
import Testing
@testable import SyncCore

/// A collection item keeps short fractions inline and its insert among the
/// writes as a flag (CollectionItem): every fraction length and every mix of
/// writes must survive the binary and JSON forms and compare by value.
struct CompactItemTests {
    let author = "bas"

    func item(fraction: [UInt8]?, edits: [UInt64], insert: Bool, remove: Bool = false) -> CollectionItem {
        let id = Dot(replica: ReplicaID(7), counter: 1)
        var item = CollectionItem(id: id, basePosition: fraction)
        if insert {
            item.applyText(RegisterValue(dot: id, stamp: HLCTimestamp(rawValue: 1 << 16), author: author, value: "Doel (fictief)"),
                           context: VersionVector())
        }
        for counter in edits {
            item.applyStatus(RegisterValue(dot: Dot(replica: ReplicaID(8), counter: counter), stamp: HLCTimestamp(rawValue: (counter + 1) << 16),
                                           author: "wendy", value: "bezig"), context: VersionVector([(ReplicaID(8), counter - 1)]))
        }
        if remove {
            item.applyRemove(Dot(replica: ReplicaID(9), counter: 1), context: VersionVector([(ReplicaID(7), 1)]))
        }
        return item
    }

    @Test(arguments: [nil, [], [0x80], [0x00, 0x00], [1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 8, 0], Array(repeating: 0xFF, count: 20)] as [[UInt8]?])
    func everyFractionAndWriteMixRoundTrips(fraction: [UInt8]?) throws {
        for (edits, insert, remove) in [([], true, false), ([2], true, false), ([2, 3], false, false), ([], true, true), ([2], true, true)] as [([UInt64], Bool, Bool)] {
            let original = item(fraction: fraction, edits: edits, insert: insert, remove: remove)
            #expect(original.basePosition == fraction)
            let expectedWrites = (insert && !remove ? [original.id] : []) + edits.map { Dot(replica: ReplicaID(8), counter: $0) }
            #expect(original.writes == expectedWrites.sorted())
            #expect(original.isLive == !expectedWrites.isEmpty)
            let element = SegmentElement.item(collection: "doelen", item: original)
            let binary = try SegmentElement.decodeRow(element.encodedRow())
            #expect(binary == element)
            let json = try MessageJSON.decode(SegmentElement.self, from: MessageJSON.encode(element))
            #expect(json == element)
            if case .item(_, let decoded) = binary {
                #expect(decoded.basePosition == fraction && decoded.writes == original.writes && decoded.hashValue == original.hashValue)
                #expect(decoded.sortKey == original.sortKey)
            }
            // The key is the fraction, then the ID's replica and counter as four big-endian bytes each,
            // whether the fraction is inline, in its own array or absent.
            #expect(original.sortKey == (fraction ?? []) + [0, 0, 0, 7, 0, 0, 0, 1])
        }
    }

    @Test func repeatedDotsInAJSONItemDecodeToTheOneForm() throws {
        let original = item(fraction: [0x40], edits: [2, 3], insert: true, remove: false)
        var object = try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(original)) as? [String: Any])
        let writes = try #require(object["writes"] as? [Any])
        object["writes"] = writes + writes.reversed()
        let repeated = try JSONDecoder().decode(CollectionItem.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(repeated == original && repeated.hashValue == original.hashValue)
        #expect(repeated.writes == original.writes)
    }

    @Test func anItemIsEqualWhicheverOrderItsOpsArrive() throws {
        let inserted = item(fraction: [0x40, 0x01], edits: [], insert: true)
        let edited = item(fraction: nil, edits: [2], insert: false)
        var a = inserted
        a.join(edited)
        var b = edited
        b.join(inserted)
        #expect(a == b && a.hashValue == b.hashValue)
        #expect(a.basePosition == [0x40, 0x01], "the edit that came first learns the insert's fraction")
        #expect(a.writes.count == 2 && a.isLive)
    }
}
