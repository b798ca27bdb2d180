import HTTPTypes
import Foundation
import Hummingbird
import SyncCore

/// `/v1/admin/…`: every `fieldcli admin` command (DESIGN §8), behind an admin token.
struct AdminRoutes {
    let store: ServerStore

    struct ConflictQuery: Codable, Sendable {
        var household: HouseholdID?
        var breakGlass: String?
    }

    func register(on router: Router<BasicRequestContext>) {
        let store = self.store
        let admin = router.group("/v1/admin")

        /// Authenticates, then runs the body with the admin user.
        @Sendable func handle(_ route: String, _ request: Request, _ context: BasicRequestContext,
                              _ body: @escaping @Sendable (UserRow, [UInt8]) async throws -> Response) async -> Response {
            await HTTPSupport.guarded(request, context: context, route: "admin." + route, metrics: store.metrics) {
                guard let token = HTTPSupport.bearer(request) else {
                    throw ServerError(.unauthorized, "Admin commands need an admin token: --token T or FIELDSYNC_ADMIN_TOKEN.", status: .unauthorized)
                }
                let user = try await store.authenticateAdmin(token: token)
                let bytes = request.method == .post ? try await HTTPSupport.body(request, limit: 1 << 20) : []
                return try await body(user, bytes)
            }
        }
        @Sendable func household(_ text: String?) throws -> HouseholdID? {
            guard let text, !text.isEmpty else { return nil }
            guard let id = HouseholdID(text) else { throw ServerError.badRequest("\(text) is not a household ID (a UUID).") }
            return id
        }
        @Sendable func parameter(_ context: BasicRequestContext, _ name: String) throws -> String {
            guard let value = context.parameters.get(name) else { throw ServerError.badRequest("Missing \(name) in the path.") }
            // The router hands the segment over still percent-encoded: a device named
            // "laptop wim" arrives as "laptop%20wim" and would match nothing.
            return value.removingPercentEncoding ?? value
        }

        admin.post("users") { request, context in
            await handle("userAdd", request, context) { user, body in
                HTTPSupport.json(try await store.addUser(try HTTPSupport.decodeJSON(AdminAPI.AddUser.self, from: body), by: user), request: request, status: .created)
            }
        }
        admin.get("users") { request, context in
            await handle("userList", request, context) { user, _ in
                let result = try await store.listUsers()
                try await store.auditAdminRead("userList", by: user)
                return HTTPSupport.json(result, request: request)
            }
        }
        admin.post("users/:name/disable") { request, context in
            await handle("userDisable", request, context) { user, _ in
                HTTPSupport.json(try await store.disableUser(try parameter(context, "name"), by: user), request: request)
            }
        }
        admin.post("users/:name/enrollment-code") { request, context in
            await handle("enrollCode", request, context) { user, _ in
                HTTPSupport.json(try await store.enrollmentCode(for: try parameter(context, "name"), by: user), request: request, status: .created)
            }
        }
        admin.post("users/:name/admin-token") { request, context in
            await handle("adminToken", request, context) { user, _ in
                HTTPSupport.json(try await store.adminToken(for: try parameter(context, "name"), by: user), request: request, status: .created)
            }
        }
        admin.post("users/:name/admin-tokens/revoke") { request, context in
            await handle("adminTokenRevoke", request, context) { user, _ in
                HTTPSupport.json(try await store.revokeAdminTokens(of: try parameter(context, "name"), by: user), request: request)
            }
        }
        admin.get("roles") { request, context in
            await handle("roles", request, context) { _, _ in
                let roles = store.configuration.policy.roles.mapValues { purposes in
                    Dictionary(uniqueKeysWithValues: purposes.map { ($0.key.rawValue, $0.value.rawValue) })
                }
                return HTTPSupport.json(roles, request: request)
            }
        }
        admin.post("assignments") { request, context in
            await handle("assign", request, context) { user, body in
                HTTPSupport.json(try await store.assign(try HTTPSupport.decodeJSON(AdminAPI.Assign.self, from: body), by: user), request: request)
            }
        }
        admin.post("assignments/remove") { request, context in
            await handle("unassign", request, context) { user, body in
                HTTPSupport.json(try await store.unassign(try HTTPSupport.decodeJSON(AdminAPI.Assign.self, from: body), by: user), request: request)
            }
        }
        admin.post("grants") { request, context in
            await handle("grant", request, context) { user, body in
                HTTPSupport.json(try await store.grant(try HTTPSupport.decodeJSON(AdminAPI.GrantRequest.self, from: body), by: user), request: request, status: .created)
            }
        }
        admin.post("grants/revoke") { request, context in
            await handle("revokeGrant", request, context) { user, body in
                HTTPSupport.json(try await store.revokeGrant(try HTTPSupport.decodeJSON(AdminAPI.RevokeGrant.self, from: body), by: user), request: request)
            }
        }
        admin.post("consent-blocks") { request, context in
            await handle("consentBlock", request, context) { user, body in
                HTTPSupport.json(try await store.consentBlock(try HTTPSupport.decodeJSON(AdminAPI.ConsentBlockRequest.self, from: body), add: true, by: user), request: request)
            }
        }
        admin.post("consent-blocks/remove") { request, context in
            await handle("consentUnblock", request, context) { user, body in
                HTTPSupport.json(try await store.consentBlock(try HTTPSupport.decodeJSON(AdminAPI.ConsentBlockRequest.self, from: body), add: false, by: user), request: request)
            }
        }
        admin.get("households/:id/access") { request, context in
            await handle("access", request, context) { user, _ in
                guard let id = try household(try parameter(context, "id")) else { throw ServerError.badRequest("Give a household ID.") }
                return HTTPSupport.json(try await store.access(household: id, by: user), request: request)
            }
        }
        admin.get("devices") { request, context in
            await handle("deviceList", request, context) { user, _ in
                let result = try await store.listDevices()
                try await store.auditAdminRead("deviceList", by: user)
                return HTTPSupport.json(result, request: request)
            }
        }
        admin.post("devices/:id/revoke") { request, context in
            await handle("deviceRevoke", request, context) { user, _ in
                HTTPSupport.json(try await store.revokeDevice(try parameter(context, "id"), by: user), request: request)
            }
        }
        admin.post("households") { request, context in
            await handle("householdCreate", request, context) { user, body in
                let create = body.isEmpty ? AdminAPI.CreateHousehold(label: nil) : try HTTPSupport.decodeJSON(AdminAPI.CreateHousehold.self, from: body)
                return HTTPSupport.json(try await store.createHousehold(label: create.label, by: user), request: request, status: .created)
            }
        }
        admin.get("households") { request, context in
            await handle("householdList", request, context) { user, _ in
                let result = try await store.listHouseholds()
                try await store.auditAdminRead("householdList", by: user)
                return HTTPSupport.json(result, request: request)
            }
        }
        admin.post("conflicts/query") { request, context in
            await handle("conflicts", request, context) { user, body in
                let query = body.isEmpty ? ConflictQuery() : try HTTPSupport.decodeJSON(ConflictQuery.self, from: body)
                return HTTPSupport.json(try await store.conflicts(household: query.household, breakGlass: query.breakGlass, by: user), request: request)
            }
        }
        admin.post("conflicts/resolve") { request, context in
            await handle("resolve", request, context) { user, body in
                HTTPSupport.json(try await store.resolve(try HTTPSupport.decodeJSON(AdminAPI.Resolve.self, from: body), by: user), request: request)
            }
        }
        admin.get("rejects") { request, context in
            await handle("rejects", request, context) { user, _ in
                let result = try await store.listRejects()
                try await store.auditAdminRead("rejects", by: user)
                return HTTPSupport.json(result, request: request)
            }
        }
        admin.post("rejects/:id/requeue") { request, context in
            await handle("requeue", request, context) { user, _ in
                guard let id = Int64(try parameter(context, "id")) else { throw ServerError.badRequest("A reject ID is a number.") }
                return HTTPSupport.json(try await store.requeueReject(id, by: user), request: request)
            }
        }
        admin.post("rejects/:id/discard") { request, context in
            await handle("discard", request, context) { user, _ in
                guard let id = Int64(try parameter(context, "id")) else { throw ServerError.badRequest("A reject ID is a number.") }
                return HTTPSupport.json(try await store.discardReject(id, by: user), request: request)
            }
        }
        admin.get("audit") { request, context in
            await handle("audit", request, context) { user, _ in
                let id = try household(request.uri.queryParameters.get("household"))
                let limit = min(100_000, max(1, Int(request.uri.queryParameters.get("limit") ?? "") ?? 1000))
                return HTTPSupport.json(try await store.auditRows(household: id, limit: limit, by: user), request: request)
            }
        }
        admin.get("audit/verify") { request, context in
            await handle("auditVerify", request, context) { user, _ in
                let result = try await store.verifyAudit()
                try await store.auditAdminRead("auditVerify", by: user)
                return HTTPSupport.json(result, request: request)
            }
        }
        admin.post("erase") { request, context in
            await handle("erase", request, context) { user, body in
                HTTPSupport.json(try await store.erase(try HTTPSupport.decodeJSON(AdminAPI.Erase.self, from: body), by: user), request: request)
            }
        }
        // The read-only follow-up of an erasure: what was erased, who still holds it. Erases nothing.
        admin.get("erasures") { request, context in
            await handle("erasureStatus", request, context) { user, _ in
                guard let id = try household(request.uri.queryParameters.get("household")) else {
                    throw ServerError.badRequest("Give ?household=ID.")
                }
                let purpose = request.uri.queryParameters.get("purpose").flatMap { $0.isEmpty ? nil : Purpose(String($0).uppercased()) }
                return HTTPSupport.json(try await store.erasureStatus(household: id, purpose: purpose, by: user), request: request)
            }
        }
    }
}
