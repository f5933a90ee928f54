"""URL blocklists and PII redaction: every reason, and what must not match."""

import pytest
from hypothesis import given, settings, strategies as st

from thresher.transforms.document import Drop
from thresher.transforms.filters.base import FilterStage
from thresher.transforms.filters.pii import PiiStage
from thresher.transforms.filters.pii import PiiRedactor
from thresher.transforms.filters.urlfilter import UrlFilter


@pytest.fixture
def lists(tmp_path):
    (tmp_path / "adult-domains").write_text("# UT1 adult\nbad.example\nwww.worse.example\n")
    (tmp_path / "phishing-urls").write_text("good.example/login/fake\n")
    return tmp_path


def stage(lists, **kw):
    return FilterStage(UrlFilter(domain_lists=[str(lists / "adult-domains")],
                                 url_lists=[str(lists / "phishing-urls")], **kw), field="url")


@pytest.mark.parametrize("url,reason,detail", [
    ("http://bad.example/page", "blocked_domain", "adult-domains:bad.example"),
    ("https://sub.deep.bad.example/x?y=1", "blocked_domain", "adult-domains:bad.example"),
    ("http://www.worse.example/", "blocked_domain", "adult-domains:worse.example"),
    ("http://good.example/login/fake", "blocked_url", "phishing-urls:good.example/login/fake"),
    ("http://good.example/login/fake/step2", "blocked_url", "phishing-urls:good.example/login/fake"),
    ("http://shop.example/casino-bonus", "banned_url_word", "casino"),
    ("http://shop.example/xxxvideos", "banned_url_subword", "xxx"),
])
def test_blocked_urls_say_which_list_matched(lists, url, reason, detail):
    out = stage(lists, banned_words=["casino"], banned_subwords=["xxx"])({"id": "1", "url": url, "text": "t"})
    assert isinstance(out, Drop) and out.reason == reason and out.detail == detail


@pytest.mark.parametrize("url", ["http://notbad.example/", "http://good.example/login/fakery",
                                 "http://good.example/login", "http://essex.example/casinos-history", None])
def test_near_misses_are_kept(lists, url):
    doc = {"id": "1", "url": url, "text": "t"}
    assert stage(lists, banned_words=["casino", "sex"])(doc) is doc


def test_annotate_records_the_match_and_keeps(lists):
    s = FilterStage(UrlFilter(domain_lists=[str(lists / "adult-domains")]), annotate=True, field="url")
    doc = s({"id": "1", "url": "http://bad.example/", "text": "t"})
    assert doc["urlfilter_reason"] == "blocked_domain" and doc["urlfilter_list"] == "adult-domains:bad.example"


@pytest.mark.parametrize("text,emails,ips", [
    ("Write to jane.doe+news@mail.example.org today.", 1, 0),
    ("Our DNS is 8.8.8.8 and 1.1.1.1.", 0, 2),
    ("The router is at 192.168.1.1, the host at 10.0.0.7, loopback 127.0.0.1.", 0, 0),
    ("Docs use 192.0.2.1 and 203.0.113.9 (reserved for documentation).", 0, 0),
    ("Upgrade to v1.2.3.4 or version 10.0.0.1; see section 1.2.3.4.5.", 0, 0),
    ("Not an address: 256.1.1.1 or 1.2.3.", 0, 0),
    ("IPv6: 2001:4860:4860::8888 is public, fe80::1 and ::1 are not.", 0, 1),
    ("user@localhost is not an address; a@b.c neither.", 0, 0),
])
def test_pii_redaction(text, emails, ips):
    out, counts = PiiRedactor().redact(text)
    assert counts == {"emails": emails, "ips": ips}
    assert out.count("<EMAIL>") == emails and out.count("<IP_ADDRESS>") == ips


def test_pii_stage_counts_per_document():
    s = PiiStage(PiiRedactor())
    doc = s({"id": "1", "text": "Mail a.b@example.com or b.c@example.com from 8.8.4.4."})
    assert doc["pii_emails"] == 2 and doc["pii_ips"] == 1
    assert "example.com" not in doc["text"]
    assert s.pop_counters() == {"emails_redacted": 2, "documents_with_emails": 1, "ips_redacted": 1,
                                "documents_with_ips": 1}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.one_of(st.none(), st.text(max_size=80)))
def test_url_filter_and_pii_never_raise(text, url):
    UrlFilter(banned_words=["x"], banned_subwords=["y"]).score(url)
    PiiRedactor().redact(text)
