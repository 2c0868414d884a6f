"""``jetwire.Url`` hosts against the WHATWG URL standard's host parser (r[jetstream.wireformat.url]).

Upstream parses a decoded URL with Rust's ``url`` crate, which follows the WHATWG standard, so
jetwire refuses what that parser refuses. Every expected answer below was worked out by hand from
the standard's algorithms (ends-in-a-number checker, IPv4 number parser, IPv4 parser, IPv6 parser,
forbidden host and domain code points); the reasoning is given beside each case.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jetwire as jw
from jetwire import wiretypes

H = bytes.fromhex


@jw.wireformat
class Link:
    id: jw.u8
    url: jw.Url


def wire(text):
    raw = text.encode()
    return len(raw).to_bytes(2, "little") + raw


VALID = [
    # -- IPv4: the host ends in a number, and the IPv4 parser accepts it --------------------
    ("http://0x7f.1/", "two parts: 0x7f hex = 127, then 1 fills the last 3 bytes: 127.0.0.1"),
    ("http://2130706433/", "one part fills all 4 bytes: 2130706433 = 0x7f000001 < 2**32"),
    ("http://127.1/", "two parts: 127, then 1 < 256**3"),
    ("http://1.2.3.4/", "four decimal parts, each under 256"),
    ("http://1.2.3.4./", "one trailing dot: the empty last part is dropped before parsing"),
    ("http://4294967295/", "one part, 2**32 - 1: the largest that fits 4 bytes"),
    ("http://256/", "one part, 256 < 2**32 (it is 0.0.1.0)"),
    ("http://1.65535/", "two parts: the last has 3 bytes, 65535 < 256**3"),
    ("http://1.2.65535/", "three parts: the last has 2 bytes, 65535 < 256**2"),
    ("http://010.0.0.1/", "0-led part is octal: 010 = 8"),
    ("http://00/", "0-led, octal digits '0': 0"),
    ("http://0/", "a single 0 is decimal 0"),
    ("http://0x.0x.0/", "'0x' alone is hex with no digits, which is 0: 0.0.0.0"),
    ("http://0XFF.0xff.0xFF.0xfF/", "0X and hex digits in either case: 255.255.255.255"),
    ("http://%30%78%37%66.1/", "percent-decoded first: '0x7f.1' = 127.0.0.1"),
    ("http://\uff10\uff38\uff43\uff10\uff0e\uff10\uff12\uff15\uff10\uff0e\uff10\uff11/",
     "IDNA maps fullwidth forms: '0Xc0.0250.01' = 192 (hex), 168 (octal 250), 1"),
    ("http://1.2.3.4:8080/", "the port is not part of the host"),
    ("http://user:pw@127.1/", "credentials end at the last @; the host is 127.1"),
    # -- not a number at the end: a domain, whatever its other labels look like ------------
    ("http://1.0xg/", "'0xg' is not hex: the host does not end in a number, so it is a domain"),
    ("http://1.2.3.4.com/", "the last label 'com' is not a number: a domain"),
    ("http://999.example/", "only the last label decides: a domain"),
    ("http://./", "'.' minus its trailing dot leaves an empty label: not a number"),
    ("http://foo.09../", "only one trailing dot is dropped: the last label is empty, not a number"),
    ("http://10000000000.com/", "a number-looking label that is not the last one"),
    # -- IPv6 in brackets ---------------------------------------------------------------------
    ("http://[::1]/", "'::' then one piece"),
    ("http://[::]/", "all pieces compressed"),
    ("http://[::1]:80/", "the : inside brackets is the address's, the one after is the port's"),
    ("http://[1:0::]/", "compression at the end"),
    ("http://[1:2:3:4:5:6:7::]/", "seven pieces, then '::' standing for the eighth"),
    ("http://[1:2:3:4:5:6:7:8]/", "eight pieces, no compression"),
    ("http://[::127.0.0.1]/", "an IPv4 address fills the last two pieces"),
    ("http://[1:2:3:4:5:6:1.2.3.4]/", "six pieces, then IPv4 for pieces 7 and 8"),
    ("http://[0:0:0:0:0:0:13.1.68.3]/", "the same with zeros written out"),
    ("http://[aBcD::ffff]/", "hex digits in either case"),
    # -- authority rules around the host ------------------------------------------------------
    ("http:example.com", "a special scheme needs no slashes: this is http://example.com/"),
    ("http:///example.com/", "any run of slashes before a special authority is skipped"),
    ("http:\\\\example.com\\x", "a backslash counts as a slash in a special URL"),
    ("http://h:/", "an empty port is allowed"),
    ("http://h:00080/", "a port is any run of digits up to 65535: 00080 is 80"),
    ("file:///etc/passwd", "file URLs may have an empty host"),
    ("file://C:/x", "file://C: is a Windows drive letter, part of the path, not a host"),
    ("file://server/share", "a file host that is a domain"),
    ("file://127.1/x", "a file host is IPv4-parsed too: 127.0.0.1"),
    ("foo://", "a non-special URL may have an empty host"),
    ("foo://1.2.3.256/", "a non-special host is opaque: no IPv4 parsing"),
    ("foo://[::1]/", "a bracketed opaque host is still an IPv6 address"),
    ("mailto:someone@1.2.3.256", "no authority at all: nothing is a host"),
]

INVALID = [
    # -- ends in a number, but the IPv4 parser refuses it ------------------------------------
    ("http://1.2.3.256/", "four parts: the last has 1 byte and 256 >= 256", "IPv4"),
    ("http://0x100000000/", "one part: 0x100000000 = 2**32 does not fit 4 bytes", "IPv4"),
    ("http://4294967296/", "one part: 2**32 does not fit 4 bytes", "IPv4"),
    ("http://1.2.3.4.5/", "five parts: at most four", "IPv4"),
    ("http://1.2.3.4.5./", "five parts even after the trailing dot is dropped", "IPv4"),
    ("http://09/", "0-led, so octal, and 9 is no octal digit", "IPv4"),
    ("http://1.2.3.08/", "octal again: 8 is no octal digit", "IPv4"),
    ("http://256.1.2.3/", "a part before the last over 255", "IPv4"),
    ("http://0x100.2.3.4/", "0x100 = 256 before the last part", "IPv4"),
    ("http://1.65536.1/", "a middle part over 255 even though the last has room", "IPv4"),
    ("http://1.2.65536/", "three parts: the last has 2 bytes and 65536 >= 256**2", "IPv4"),
    ("http://1..2/", "an empty middle part is no number", "IPv4"),
    ("http://foo.09/", "ends in a number ('09' is all digits), and 'foo' is no number", "IPv4"),
    ("http://foo.0x/", "'0x' is an IPv4 number (0), so it ends in one; 'foo' is not", "IPv4"),
    ("http://foo.1.2.3.4/", "ends in a number, and has five parts", "IPv4"),
    ("http://0x1g.2/", "ends in '2'; '0x1g' is no hex number", "IPv4"),
    ("http://%31.2.3.256/", "percent-decoded first: '1.2.3.256'", "IPv4"),
    ("http://1.2.3.0x100./", "trailing dot dropped; the last part 0x100 = 256 needs 2 bytes", "IPv4"),
    # -- forbidden host and domain code points --------------------------------------------------
    ("http://a<b/", "'<' is a forbidden host code point", "'<'"),
    ("http://a^b/", "'^' is a forbidden host code point", "'^'"),
    ("http://a|b/", "'|' is a forbidden host code point", "'|'"),
    ("http://a[b/", "'[' inside a domain", "'['"),
    ("http://a%2Fb/", "percent-decoded '/' is a forbidden domain code point", "'/'"),
    ("http://a%25b/", "percent-decoded '%' is a forbidden domain code point", "'%'"),
    ("http://a%zzb/", "an undecodable '%' stays '%', a forbidden domain code point", "'%'"),
    ("http://a%00b/", "percent-decoded NUL", "'\\x00'"),
    ("http://a%7Fb/", "percent-decoded DEL is a forbidden domain code point", "'\\x7f'"),
    ("http://\uff05\uff14\uff11.com/", "IDNA maps fullwidth '%41' to '%41': '%' is forbidden", "'%'"),
    ("http://%ff/", "percent-decoded bytes that are not UTF-8", "UTF-8"),
    ("file://host:80/", "a file URL has no port: ':' stays in the host and is forbidden", "':'"),
    ("file://1.2.3.256/", "file hosts are IPv4-parsed like http's", "IPv4"),
    ("foo://a<b/", "an opaque host refuses forbidden host code points too", "'<'"),
    # -- IPv6 --------------------------------------------------------------------------------
    ("http://[::1/", "'[' never closed", "']'"),
    ("http://[::1]x/", "text after ']'", "']'"),
    ("http://[1::2::3]/", "'::' twice", "IPv6"),
    ("http://[0:1:2:3:4:5:6:7:8]/", "nine pieces", "IPv6"),
    ("http://[1:2:3:4:5:6:7]/", "seven pieces and no '::'", "IPv6"),
    ("http://[:1]/", "a leading ':' that is not '::'", "IPv6"),
    ("http://[1:]/", "a trailing single ':'", "IPv6"),
    ("http://[12345::]/", "a piece of five hex digits", "IPv6"),
    ("http://[::1.2.3.]/", "embedded IPv4 with an empty fourth part", "IPv6"),
    ("http://[::1.2.3.4.5]/", "embedded IPv4 with five parts", "IPv6"),
    ("http://[::.1.2.3]/", "embedded IPv4 starting with '.'", "IPv6"),
    ("http://[::01.2.3.4]/", "embedded IPv4 parts allow no leading zero", "IPv6"),
    ("http://[::256.0.0.1]/", "embedded IPv4 part over 255", "IPv6"),
    ("http://[::1.2.3]/", "embedded IPv4 with three parts", "IPv6"),
    ("http://[1:2:3:4:5:6:7:1.2.3.4]/", "IPv4 would make a ninth piece", "IPv6"),
    ("http://[::1%25eth0]/", "zone ids are not part of the WHATWG IPv6 syntax", "IPv6"),
    ("http://[x]/", "not hex", "IPv6"),
    ("foo://[x]/", "a bracketed opaque host must be IPv6 as well", "IPv6"),
    # -- authority ----------------------------------------------------------------------------
    ("http://user@/", "credentials with no host after them", "no host"),
    ("http://:80/", "a port with no host", "empty host"),
    ("foo://:80/", "a port with no host, non-special too", "empty host"),
    ("http:///", "only slashes: a special URL needs a host", "empty host"),
    ("http://h:65536/", "port over 65535", "65536"),
    ("http://h:8x/", "port not a number", "port"),
]


@pytest.mark.parametrize("text, why", VALID, ids=[c[0] for c in VALID])
def test_valid_hosts_accepted_and_kept_as_given(text, why):
    url = jw.Url(text)
    assert str(url) == text  # no normalisation: the text goes on the wire as given
    assert jw.encode(Link(3, url)) == H("03") + wire(text)
    got = jw.decode(Link, H("03") + wire(text))
    assert got.url == text and type(got.url) is jw.Url


@pytest.mark.parametrize("text, why, says", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_hosts_refused_naming_the_path(text, why, says):
    with pytest.raises(ValueError, match="not an absolute URL") as made:
        jw.Url(text)
    assert says in str(made.value)
    # decoding: the path and the offset of the string
    with pytest.raises(jw.DecodeError) as decoded:
        jw.decode(Link, H("03") + wire(text))
    assert (decoded.value.path, decoded.value.offset) == ("Link.url", 1)
    assert says in str(decoded.value)
    with pytest.raises(jw.DecodeError) as alone:
        jw.decode(jw.Url, wire(text))
    assert (alone.value.path, alone.value.offset) == ("Url", 0)
    # encoding a plain str in a Url field
    with pytest.raises(jw.EncodeError) as encoded:
        jw.encode(Link(3, text))
    assert encoded.value.path == "Link.url"
    assert says in str(encoded.value)


def test_decode_from_stream_and_view_refuse_too():
    """Every decoding entry point runs the same check: files and memoryviews included."""
    import io

    data = H("03") + wire("http://1.2.3.256/")
    with pytest.raises(jw.DecodeError) as info:
        jw.decode(Link, memoryview(data))
    assert info.value.path == "Link.url"
    with pytest.raises(jw.DecodeError) as info:
        jw.read_value(Link, io.BytesIO(data))
    assert info.value.path == "Link.url"


def test_urls_strategy_makes_ip_hosts():
    """``jetwire.testing.urls`` draws IPv4 and IPv6 hosts too, and every draw is a valid Url."""
    from jetwire.testing import strategies

    seen = {"ipv4": False, "ipv6": False}

    @settings(max_examples=300, database=None)
    @given(strategies.urls())
    def check(url):
        assert jw.Url(str(url)) == url
        host = url.split("//", 1)[-1]
        if host[:1].isdigit():
            seen["ipv4"] = True
        if host.startswith("["):
            seen["ipv6"] = True

    check()
    assert seen == {"ipv4": True, "ipv6": True}


URLISH = "htpswfr:/\\.[]@%?#-_0123456789xabcABCX\uff10\uff0e \x00"


@given(
    st.one_of(
        st.text(URLISH, max_size=30),
        st.builds(
            lambda scheme, rest: scheme + rest,
            st.sampled_from(["http://", "https://", "ws://", "ftp://", "file://", "foo://", "http:"]),
            st.text(URLISH, max_size=30),
        ),
    )
)
@settings(max_examples=3000, database=None)
def test_shortcut_for_the_usual_url_accepts_only_what_the_whole_check_accepts(text):
    if wiretypes._PLAIN.fullmatch(text):
        assert wiretypes.whole_url_problem(text) is None


@pytest.mark.parametrize(
    "text",
    ["https://example.com/a?b=1", "http://127.0.0.1:8080/x", "ws://a-b.c_d.:9999#f", "ftp://x"],
)
def test_the_usual_urls_take_the_shortcut(text):
    assert wiretypes._PLAIN.fullmatch(text) and wiretypes.whole_url_problem(text) is None
