import Foundation
import Testing
@testable import Tributary

@Suite struct SourceURITests {
    @Test func aBarePathBecomesAnAbsoluteFileURI() throws {
        let uri = try SourceURI(TestMedia.h264)
        #expect(uri.uri == "file://" + TestMedia.h264)
        #expect(uri.scheme == "file")
        #expect(!uri.isLiveByScheme)
    }

    @Test func aMissingFileIsRefusedNamingIt() {
        #expect {
            try SourceURI("/no/such/video.mp4")
        } throws: { error in
            "\(error)".contains("/no/such/video.mp4")
        }
    }

    @Test func anUnknownSchemeIsRefusedNamingIt() {
        #expect {
            try SourceURI("nosuchscheme://camera/1")
        } throws: { error in
            "\(error)".contains("nosuchscheme")
        }
    }

    @Test func rtspIsLive() throws {
        #expect(try SourceURI("rtsp://127.0.0.1:8554/cam").isLiveByScheme)
    }
}
