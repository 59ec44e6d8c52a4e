import re

from django.contrib.syndication.views import Feed
from django.urls import reverse_lazy
from django.utils.feedgenerator import Atom1Feed

from .models import Link

FEED_SIZE = 30
# What XML 1.0 cannot carry. Forms refuse these now, but rows stored before may hold them,
# and one of them would make the whole feed fail for every reader.
XML_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def xml_safe(text):
    return XML_UNSAFE.sub("", text)


class NewLinksFeed(Feed):
    feed_type = Atom1Feed
    title = "Database glossary: new links"
    subtitle = "Links recently added to the A–Z glossary of databases for Python developers."
    link = reverse_lazy("glossary:link-list")
    item_guid_is_permalink = False

    def items(self):
        return Link.objects.published().newest_first()[:FEED_SIZE]

    def item_title(self, link):
        return xml_safe(f"{link.topic.name}: {link.title}")

    def item_description(self, link):
        return xml_safe(link.description or f"{link.get_group_display()} for {link.topic.name}.")

    def item_link(self, link):
        return link.url

    def item_guid(self, link):
        # The same URL may be listed under several topics, so the id is the row's.
        return f"urn:db-glossary:link:{link.pk}"

    def item_pubdate(self, link):
        return link.created

    def item_updateddate(self, link):
        return link.updated

    def item_categories(self, link):
        return [xml_safe(link.topic.name), link.get_group_display()]
