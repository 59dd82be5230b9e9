import GatewayCore
import RedisClient

extension RedisEndpoint {
    /// The client's view of the address the configuration names.
    init(_ address: RedisAddress) {
        let location: Address
        switch address.location {
        case .tcp(let host, let port): location = .tcp(host: host, port: port)
        case .unix(let path): location = .unix(path: path)
        }
        self.init(address: location, database: address.database, user: address.user, password: address.password)
    }
}
