import Foundation
import SyncCore

/// The `devices.held` column: what a device held after its last pull, as
/// `count, (household, purpose, epoch)…`.
extension HeldSegment {
    static func storageBytes(_ list: [HeldSegment]) -> Data {
        var writer = BinaryWriter()
        writer.varint(list.count)
        for held in list {
            writer.household(held.segment.household)
            writer.string(held.segment.purpose.rawValue)
            writer.varint(UInt64(held.epoch))
        }
        return Data(writer.bytes)
    }

    /// Nil when the column is empty (never synced) or unreadable.
    static func fromStorage(_ data: Data?) -> [HeldSegment]? {
        guard let data, !data.isEmpty else { return nil }
        var reader = BinaryReader(Array(data))
        guard let count = try? reader.count(minimumSize: 18) else { return nil }
        var result: [HeldSegment] = []
        result.reserveCapacity(count)
        for _ in 0..<count {
            guard let household = try? reader.household(), let code = try? reader.string(), let epoch = try? reader.uint32() else {
                return nil
            }
            result.append(HeldSegment(segment: SegmentKey(household: household, purpose: Purpose(code)), epoch: epoch))
        }
        return result
    }
}
