import Foundation
import Testing
@testable import SyncCore

/// The policy evaluator and the op validator: every reason code, expiry at the
/// boundary, household-scoped grants (DESIGN §4).
struct PolicyTests {
    let h = Fixture.household
    let now = Fixture.t0

    func segment(_ purpose: Purpose, _ household: HouseholdID = Fixture.household) -> SegmentKey {
        SegmentKey(household: household, purpose: purpose)
    }

    @Test func roleGivesItsPurposes() {
        let wmo = Fixture.context(user: "w1", role: "wmo-consulent")
        #expect(PolicyEvaluator.check(.write, segment: segment(.wmo), context: wmo, now: now).isAllowed)
        #expect(PolicyEvaluator.check(.write, segment: segment(.regie), context: wmo, now: now).isAllowed)
        #expect(PolicyEvaluator.check(.read, segment: segment(.wgs), context: wmo, now: now).refusal == .purposeNotGranted)
    }

    @Test func notAssignedIsRefused() {
        let wmo = Fixture.context(user: "w1", role: "wmo-consulent")
        #expect(PolicyEvaluator.check(.read, segment: segment(.wmo, Fixture.otherHousehold), context: wmo, now: now).refusal == .notAssigned)
    }

    @Test func assignmentExpiresAtItsEnd() {
        let wmo = Fixture.context(user: "w1", role: "wmo-consulent", until: now)
        #expect(PolicyEvaluator.check(.read, segment: segment(.wmo), context: wmo, now: now - 1).isAllowed)
        #expect(PolicyEvaluator.check(.read, segment: segment(.wmo), context: wmo, now: now).refusal == .notAssigned)
    }

    @Test func grantExpiresAtItsEnd() {
        let grant = Grant(purpose: .wgs, access: .read, until: now)
        let wmo = Fixture.context(user: "w1", role: "wmo-consulent", grants: [grant])
        #expect(PolicyEvaluator.check(.read, segment: segment(.wgs), context: wmo, now: now - 1).isAllowed)
        #expect(PolicyEvaluator.check(.read, segment: segment(.wgs), context: wmo, now: now).refusal == .purposeNotGranted)
    }

    @Test func readGrantIsReadOnly() {
        let wmo = Fixture.context(user: "w1", role: "wmo-consulent", grants: [Grant(purpose: .wgs, access: .read)])
        #expect(PolicyEvaluator.check(.read, segment: segment(.wgs), context: wmo, now: now).isAllowed)
        #expect(PolicyEvaluator.check(.write, segment: segment(.wgs), context: wmo, now: now).refusal == .readOnly)
    }

    @Test func householdScopedGrantAppliesToThatHouseholdOnly() {
        let grant = Grant(purpose: .jw, access: .write, household: h)
        let ctx = Fixture.context(user: "w1", role: "wmo-consulent", households: [h, Fixture.otherHousehold], grants: [grant])
        #expect(PolicyEvaluator.check(.write, segment: segment(.jw), context: ctx, now: now).isAllowed)
        #expect(PolicyEvaluator.check(.read, segment: segment(.jw, Fixture.otherHousehold), context: ctx, now: now).refusal == .purposeNotGranted)
    }

    @Test func consentBlockBlocks() {
        var ctx = Fixture.context(user: "w1", role: "wmo-consulent")
        ctx.consentBlocks = [ConsentBlock(household: h, purpose: .wmo)]
        #expect(PolicyEvaluator.check(.read, segment: segment(.wmo), context: ctx, now: now).refusal == .consentWithdrawn)
        #expect(PolicyEvaluator.check(.read, segment: segment(.regie), context: ctx, now: now).isAllowed)
    }

    @Test func adminReadsNoContentWithoutGrant() {
        let admin = Fixture.context(user: "admin", role: "admin")
        for purpose in Fixture.schema.devicePurposes {
            #expect(!PolicyEvaluator.mayRead(segment(purpose), context: admin, now: now))
        }
    }

    @Test func serverOnlyIsNeverReadable() {
        let ctx = Fixture.context(user: "w1", role: "wmo-consulent", grants: [Grant(purpose: .serverOnly, access: .write)])
        #expect(!PolicyEvaluator.mayRead(segment(.serverOnly), context: ctx, now: now, serverOnly: true))
    }

    @Test func locallyCreatedHouseholdCountsAsAssigned() {
        let ctx = Fixture.context(user: "w1", role: "buurtcoach", households: [])
        #expect(PolicyEvaluator.check(.write, segment: segment(.informeel), context: ctx, now: now, createdLocally: true).isAllowed)
        #expect(PolicyEvaluator.check(.write, segment: segment(.wgs), context: ctx, now: now, createdLocally: true).refusal == .purposeNotGranted)
    }

    // MARK: The validator's reason codes

    func op(_ payload: OperationPayload, purpose: Purpose = .wmo, replica: UInt32 = 7, counter: UInt64 = 1, author: String = "w1",
            epoch: UInt32 = 0, context: VersionVector = VersionVector()) -> SyncOperation {
        SyncOperation(dot: Dot(replica: ReplicaID(replica), counter: counter), segment: segment(purpose), epoch: epoch,
                      stamp: HLCTimestamp(milliseconds: now, logical: 0), author: author, context: context, payload: payload)
    }

    func validate(_ op: SyncOperation, role: String = "wmo-consulent", grants: [Grant] = [], epoch: UInt32 = 0,
                  state: SegmentState? = nil, schema: Schema = Fixture.schema) -> RefusalReason? {
        let ctx = Fixture.context(user: "w1", role: role, grants: grants)
        return OperationValidator(schema: schema).validate(op, replica: ReplicaID(7), user: "w1", policy: ctx, now: now,
                                                           target: .init(epoch: epoch, state: state, householdExists: true))
    }

    @Test func validWriteIsAccepted() {
        #expect(validate(op(.set(field: "wmo_request", value: "Hulp bij het huishouden", resolves: []))) == nil)
    }

    @Test func writeToPurposeWithoutGrantIsRefused() {
        #expect(validate(op(.set(field: "wgs_notes", value: "x", resolves: []), purpose: .wgs)) == .purposeNotGranted)
        #expect(validate(op(.set(field: "wgs_notes", value: "x", resolves: []), purpose: .wgs),
                         grants: [Grant(purpose: .wgs, access: .read)]) == .readOnly)
    }

    @Test func unknownFieldAndWrongPurpose() {
        #expect(validate(op(.set(field: "no_such_field", value: "x", resolves: []))) == .unknownField)
        // A WGS field written into the WMO segment: the schema binds it to WGS.
        #expect(validate(op(.set(field: "wgs_notes", value: "x", resolves: []))) == .unknownField)
        #expect(validate(op(.append(log: "contactlog", entry: LogEntryBody(kind: "huisbezoek", occurredAt: now, text: "x")), purpose: "NOPE")) == .unknownField)
    }

    /// A write is checked against its field's type: free text by length (up to 64 KiB), the
    /// other types by `Schema.typeProblem`.
    @Test func fieldWritesAreCheckedAgainstTheirType() {
        let limit = String(repeating: "a", count: 64 * 1024)
        #expect(validate(op(.set(field: "wmo_request", value: limit, resolves: []))) == nil)
        #expect(validate(op(.set(field: "wmo_request", value: limit + "é", resolves: []))) == .invalid, "counted in UTF-8 bytes")
        let schemaCheck = OperationValidator(schema: Fixture.schema)
        #expect(schemaCheck.validateSchema(op(.set(field: "urgent_flag", value: "true", resolves: []), purpose: .regie)) == nil)
        #expect(schemaCheck.validateSchema(op(.set(field: "urgent_flag", value: "maybe", resolves: []), purpose: .regie)) == .invalid)
        #expect(schemaCheck.validateSchema(op(.set(field: "next_evaluation_date", value: "2026-02-29", resolves: []), purpose: .regie)) == .invalid)
        #expect(schemaCheck.validateSchema(op(.set(field: "next_evaluation_date", value: "2028-02-29", resolves: []), purpose: .regie)) == nil)
    }

    @Test func retiredFieldIsRefused() throws {
        var schema = Fixture.schema
        let index = schema.fields.firstIndex { $0.name == "wmo_arrangement" }!
        schema.fields[index].retired = true
        let reloaded = try Schema.load(json: MessageJSON.encode(schema))
        #expect(validate(op(.set(field: "wmo_arrangement", value: "x", resolves: [])), schema: reloaded) == .fieldRetired)
    }

    @Test func erasedEpochIsRefused() {
        #expect(validate(op(.set(field: "wmo_request", value: "x", resolves: []), epoch: 0), epoch: 1) == .erased)
    }

    @Test func forgedIdentityIsInvalid() {
        #expect(validate(op(.set(field: "wmo_request", value: "x", resolves: []), replica: 8)) == .invalid)
        #expect(validate(op(.set(field: "wmo_request", value: "x", resolves: []), author: "someone-else")) == .invalid)
        // A context that claims dots the segment never saw.
        var claimed = VersionVector()
        claimed.raise(ReplicaID(9), to: 3)
        #expect(validate(op(.set(field: "wmo_request", value: "x", resolves: []), context: claimed)) == .invalid)
        #expect(validate(op(.set(field: "wmo_reindication_due", value: "31-12-2026", resolves: []))) == .invalid)
    }

    /// Values the op codec carries but the stored forms cannot (vectors are
    /// signed distances, visit times offsets from the stamp): refused up
    /// front, so no segment holds a value its rows or snapshots cannot decode.
    @Test func outOfRangeCountersAndVisitTimesAreInvalid() {
        let write = OperationPayload.set(field: "wmo_request", value: "x", resolves: [])
        #expect(validate(op(write, counter: Dot.maxCounter)) == nil)
        #expect(validate(op(write, counter: Dot.maxCounter + 1)) == .invalid)
        var huge = VersionVector()
        huge.raise(ReplicaID(7), to: 1 << 62)
        #expect(validate(op(write, counter: (1 << 62) + 1, context: huge)) == .invalid)
        let late = LogEntryBody(kind: "huisbezoek", occurredAt: HLCTimestamp.maxMilliseconds + 1, text: "x")
        #expect(validate(op(.append(log: "contactlog", entry: late))) == .invalid)
        let fine = LogEntryBody(kind: "huisbezoek", occurredAt: now - 3_600_000, text: "x")
        #expect(validate(op(.append(log: "contactlog", entry: fine))) == nil)
    }

    /// A dot the segment has seen but has no verdict for would merge as a
    /// no-op: accepting it would drop the write, so it is dotReuse.
    @Test func aDotTheSegmentAlreadySawIsDotReuse() {
        var state = SegmentState(key: segment(.wmo), epoch: 0)
        state.markSeen(Dot(replica: ReplicaID(7), counter: 3))
        #expect(validate(op(.set(field: "wmo_request", value: "x", resolves: []), counter: 3), state: state) == .dotReuse)
    }

    @Test func editOfRejectedInsertDependsOnRejected() {
        var state = SegmentState(key: segment(.wmo), epoch: 0)
        let rejectedInsert = Dot(replica: ReplicaID(7), counter: 1)
        state.markSeen(rejectedInsert)
        var context = VersionVector()
        context.raise(ReplicaID(7), to: 1)
        let edit = op(.edit(collection: "doelen", item: rejectedInsert, field: .status, value: "done"), counter: 2, context: context)
        #expect(validate(edit, state: state) == .dependsOnRejected)
        let forged = op(.edit(collection: "doelen", item: Dot(replica: ReplicaID(7), counter: 99), field: .status, value: "done"), counter: 2, context: context)
        #expect(validate(forged, state: state) == .invalid)
    }

    @Test func dotReuseIsDetectedOnRepush() throws {
        var server = InMemorySyncServer(schema: Fixture.schema)
        server.policies["w1"] = Fixture.context(user: "w1", role: "wmo-consulent")
        server.addHousehold(h)
        let device = DeviceIdentity(replica: ReplicaID(7), user: "w1", deviceID: "d1")
        let first = op(.set(field: "wmo_request", value: "eerste", resolves: []))
        let request = SyncRequest(cursor: .start, schemaHash: Fixture.schema.contentHash, held: HeldSet(segments: [], includeList: true), ops: [first])
        let response = try server.sync(request, device: device, now: now)
        #expect(response.accepted.count == 1)
        // Same dot, same content: the stored verdict.
        let again = try server.sync(request, device: device, now: now)
        #expect(again.accepted.count == 1 && again.rejected.isEmpty)
        // Same dot, other content: dotReuse.
        var reused = request
        reused.ops = [op(.set(field: "wmo_request", value: "anders", resolves: []))]
        let third = try server.sync(reused, device: device, now: now)
        #expect(third.rejected.map(\.reason) == [.dotReuse])
    }

    /// The in-memory server keeps verdicts packed (16-byte keys, 16-byte
    /// fingerprints): any arrival order and epochs read back as recorded.
    @Test func storedVerdictsReadBackAsRecorded() throws {
        var server = InMemorySyncServer(schema: Fixture.schema)
        var random = SplitMix64(seed: 11)
        var recorded: [(op: SyncOperation, fingerprint: ContentHash128, rejection: RefusalReason?)] = []
        // The same dots again at a later epoch (an erased segment written anew), with other content.
        let keys = (1...150).flatMap { counter in (0..<3).map { (counter: UInt64(counter), epoch: UInt32($0)) } }
        for (counter, epoch) in keys.shuffled(using: &random) {
            let write = op(.set(field: "wmo_request", value: "v\(counter)", resolves: []), replica: counter % 2 == 0 ? 7 : 8,
                           counter: counter, epoch: epoch)
            let fingerprint = ContentHash128(high: counter &* 31 &+ UInt64(epoch) &* 7, low: ~counter)
            let rejection: RefusalReason? = counter % 5 == 0 ? .readOnly : nil
            _ = try server.record(write, fingerprint: fingerprint, rejection: rejection)
            recorded.append((write, fingerprint, rejection))
        }
        for (write, fingerprint, rejection) in recorded {
            let stored = try #require(try server.storedVerdict(for: write.dot, segment: write.segment, epoch: write.epoch))
            #expect(stored.fingerprint == fingerprint)
            #expect(stored.rejection == rejection)
            #expect(try server.storedVerdict(for: write.dot, segment: write.segment, epoch: write.epoch + 3) == nil)
        }
        #expect(try server.storedVerdict(for: Dot(replica: ReplicaID(7), counter: 152), segment: recorded[0].op.segment, epoch: 0) == nil)
    }

    @Test func everyReasonCodeHasAdvice() {
        for reason in RefusalReason.all { #expect(!reason.advice.isEmpty) }
        #expect(Set(RefusalReason.all.map(\.rawValue)).isSuperset(of: [
            "notAssigned", "purposeNotGranted", "readOnly", "unknownField", "fieldRetired", "erased", "invalid",
            "dependsOnRejected", "dotReuse",
        ]))
    }
}
