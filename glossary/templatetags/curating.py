from django import template

register = template.Library()


@register.filter
def last_updated(topic):
    """When the topic or one of its links or snippets last changed (no query on a topic
    page, which prefetches them)."""
    return max(
        [topic.updated, *(link.updated for link in topic.links.all())]
        + [snippet.updated for snippet in topic.snippets.all()]
    )
