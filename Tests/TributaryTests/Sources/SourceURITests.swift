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

    /// Found by fuzz-source-uri: the part after a NUL was kept in the URI but never checked, as
    /// GStreamer reads up to it.
    @Test func aNULCharacterIsRefused() {
        #expect {
            try SourceURI("rtsp://10.0.0.7/stream\u{0}file:///etc/passwd")
        } throws: { error in
            "\(error)".contains("NUL")
        }
        #expect(throws: PipelineError.self) { try SourceURI(TestMedia.h264 + "\u{0}") }
    }

    @Test func rtspIsLive() throws {
        #expect(try SourceURI("rtsp://127.0.0.1:8554/cam").isLiveByScheme)
    }
}
