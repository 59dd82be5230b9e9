/// The HTTP paths the gateway answers itself on every listener.
public enum HealthPaths {
    /// 200 while the process runs.
    public static let live = "/livez"
    /// 200 only when every listener is bound and every route ready; 503 while starting or draining.
    public static let ready = "/readyz"
    public static let all: Set<String> = [live, ready]
}
