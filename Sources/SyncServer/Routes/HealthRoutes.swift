import HTTPTypes
import Hummingbird

/// `GET /health` (the store answers) and `GET /metrics` (Prometheus text).
struct HealthRoutes {
    let store: ServerStore

    func register(on router: Router<BasicRequestContext>) {
        let store = self.store
        router.get("/health") { request, _ in
            // A damaged file answers "SELECT 1" but fails real requests: once one did, the server is not healthy.
            let damaged = store.metrics.storeDamageSeen
            let answers = await store.healthy()
            let healthy = !damaged && answers
            store.metrics.countRequest(route: "health", status: healthy ? 200 : 503)
            return HTTPSupport.json(["status": healthy ? "ok" : damaged ? "damaged" : "unavailable", "synchronous": store.synchronousMode],
                                    request: request, status: healthy ? .ok : .serviceUnavailable)
        }
        router.get("/metrics") { request, _ in
            let text = store.metrics.render(storeBytes: store.storeSize())
            return HTTPSupport.response(bytes: Array(text.utf8), contentType: "text/plain; version=0.0.4", request: request)
        }
    }
}
