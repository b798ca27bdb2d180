/// The one function that answers "may this user read or write this segment
/// now" (DESIGN §4). The server calls it on every op it accepts and every
/// segment it discloses; the device calls it on every local write. Pure:
/// the caller passes the time.
public enum PolicyEvaluator {
    /// Why access is allowed, for `admin access` and audit explanations.
    public struct Basis: Hashable, Sendable {
        public var access: Access
        /// "role", "grant", or "created-on-device".
        public var source: String
    }

    public enum Decision: Hashable, Sendable {
        case allowed(Basis)
        case refused(RefusalReason)

        public var isAllowed: Bool {
            if case .allowed = self { return true }
            return false
        }

        public var refusal: RefusalReason? {
            if case .refused(let reason) = self { return reason }
            return nil
        }
    }

    /// The highest access the user has to a segment now, or why there is none.
    ///
    /// - Parameters:
    ///   - createdLocally: the device created this household itself and the
    ///     server has not answered yet: it counts as assigned with the role's
    ///     purposes (DESIGN §4).
    public static func access(to segment: SegmentKey, context: PolicyContext, now: UInt64,
                              createdLocally: Bool = false, serverOnly: Bool = false) -> Decision {
        if serverOnly { return .refused(.purposeNotGranted) }
        let assigned = context.assignment(of: segment.household).map { assignment in assignment.until.map { now < $0 } ?? true } ?? false
        guard assigned || createdLocally else { return .refused(.notAssigned) }
        if context.consentBlocks.contains(where: {
            $0.household == segment.household && ($0.purpose == segment.purpose || ($0.purpose == nil && segment.purpose != .regie))
        }) {
            return .refused(.consentWithdrawn)
        }
        var best: Basis?
        if let access = context.rolePurposes[segment.purpose] {
            best = Basis(access: access, source: assigned ? "role" : "created-on-device")
        }
        if assigned {
            for grant in context.grants where grant.purpose == segment.purpose
                && (grant.household == nil || grant.household == segment.household)
                && (grant.until.map { now < $0 } ?? true) {
                if best == nil || grant.access > best!.access { best = Basis(access: grant.access, source: "grant") }
            }
        }
        guard let best else { return .refused(.purposeNotGranted) }
        return .allowed(best)
    }

    /// Whether the user may do `needed` on the segment now.
    public static func check(_ needed: Access, segment: SegmentKey, context: PolicyContext, now: UInt64,
                             createdLocally: Bool = false, serverOnly: Bool = false) -> Decision {
        let decision = access(to: segment, context: context, now: now, createdLocally: createdLocally, serverOnly: serverOnly)
        guard case .allowed(let basis) = decision else { return decision }
        return basis.access.satisfies(needed) ? decision : .refused(.readOnly)
    }

    /// May the user read the segment now?
    public static func mayRead(_ segment: SegmentKey, context: PolicyContext, now: UInt64, createdLocally: Bool = false,
                               serverOnly: Bool = false) -> Bool {
        check(.read, segment: segment, context: context, now: now, createdLocally: createdLocally, serverOnly: serverOnly).isAllowed
    }
}
